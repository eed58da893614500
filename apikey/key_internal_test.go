package apikey

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNewKeyEncodesEveryValue: the smallest and largest 32-byte values
// and random ones are 43 base62 characters that decode to the bytes
// drawn, and the hash is the SHA-256 of the whole key. A shorter
// encoding without the padding, or a hash of the bytes instead of the
// key, fails it.
func TestNewKeyEncodesEveryValue(t *testing.T) {
	inputs := [][]byte{bytes.Repeat([]byte{0}, 32), bytes.Repeat([]byte{0xff}, 32), append(bytes.Repeat([]byte{0}, 31), 1)}
	for range 200 {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		require.NoError(t, err)
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		key, hash, err := newKey(bytes.NewReader(in))
		require.NoError(t, err)
		require.True(t, WellFormed(key), key)
		n, ok := new(big.Int).SetString(key[len(Prefix):], 62)
		require.True(t, ok)
		assert.Equal(t, in, n.FillBytes(make([]byte, 32)))
		assert.Equal(t, sha256.Sum256([]byte(key)), hash)
	}
	key, _, err := newKey(bytes.NewReader(make([]byte, 32)))
	require.NoError(t, err)
	assert.Equal(t, Prefix+strings.Repeat("0", KeyChars), key)
	_, _, err = newKey(bytes.NewReader(make([]byte, 31)))
	assert.Error(t, err, "a short read is an error, never a short key")
}
