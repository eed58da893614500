// Package passkeytest holds what the software authenticators of the
// passkey tests, the reference server's tests and the load generator
// share.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"

	vw "github.com/descope/virtualwebauthn"
)

// Credential is a fresh P-256 credential for a virtualwebauthn
// authenticator. Its public point has no leading zero byte in either
// coordinate: virtualwebauthn encodes the coordinates with big.Int.Bytes,
// which drops such bytes, and go-webauthn refuses a COSE EC2 key with a
// short coordinate, so about one random key in 128 would fail its
// registration.
func Credential() vw.Credential {
	return vw.NewCredentialWithImportedKey(vw.KeyTypeEC2, fullP256Key())
}

// fullP256Key is a PKCS #8 P-256 private key whose public coordinates
// both have 32 significant bytes. A key that cannot be generated or
// encoded (the system's random source failing) panics: the callers are
// tests and a load generator with nothing to fall back on.
func fullP256Key() []byte {
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		pub, err := k.PublicKey.Bytes() // 0x04 || X || Y, fixed length
		if err != nil {
			panic(err)
		}
		if pub[1] == 0 || pub[33] == 0 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		return der
	}
}
