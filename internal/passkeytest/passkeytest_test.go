package passkeytest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFullP256KeyHasFullCoordinates: among 1,000 keys (about 15 of which
// a plain ecdsa.GenerateKey would give a short coordinate) none has a
// leading zero byte in X or Y. Without the filter in fullP256Key this
// fails almost surely.
func TestFullP256KeyHasFullCoordinates(t *testing.T) {
	for range 1000 {
		k, err := x509.ParsePKCS8PrivateKey(fullP256Key())
		require.NoError(t, err)
		pub, err := k.(*ecdsa.PrivateKey).PublicKey.Bytes()
		require.NoError(t, err)
		require.NotZero(t, pub[1], "X has a leading zero byte")
		require.NotZero(t, pub[33], "Y has a leading zero byte")
	}
	require.NotNil(t, Credential().Key, "a credential carries its key")
}
