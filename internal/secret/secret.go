// Package secret makes the single-use tokens of the module (refresh,
// verification, reset, invitation, …): 256 bits from a random source,
// handed out as URL-safe base64 and stored only as their SHA-256.
package secret

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
)

// New returns a 256-bit random token (unpadded URL-safe base64, 43
// characters) read from r, and its SHA-256, the only form that is stored.
func New(r io.Reader) (token string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", nil, fmt.Errorf("random token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, Hash(token), nil
}

// Hash is the SHA-256 of a token, the form stored and looked up.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Shaped reports whether tok could be a token of New, or of any other
// unpadded URL-safe base64 string of 22 to 128 characters (at least 128
// bits), so that anything else is refused before a query.
func Shaped(tok string) bool {
	if len(tok) < 22 || len(tok) > 128 {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
