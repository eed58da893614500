package apikey

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Key format: Prefix and KeyChars characters of base62 (0-9, a-z, A-Z),
// the 32 random bytes of the key as one big-endian number, left-padded
// with zeros. 62^43 > 2^256, so every 32-byte value has one spelling.
const (
	Prefix       = "sk_live_"
	KeyChars     = 43
	KeyLen       = len(Prefix) + KeyChars
	PrefixLen    = 12 // the characters of a key shown in lists
	MaxScopes    = 32
	MaxScopeLen  = 64
	MaxNameChars = 100
)

// ScopePattern is the pattern every scope matches (api.md).
const ScopePattern = `^[a-z][a-z0-9:._-]{0,63}$`

// newKey draws 32 bytes from r and returns the key and its SHA-256.
func newKey(r io.Reader) (key string, hash [32]byte, err error) {
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", hash, fmt.Errorf("apikey: random key: %w", err)
	}
	digits := new(big.Int).SetBytes(b[:]).Text(62)
	key = Prefix + strings.Repeat("0", KeyChars-len(digits)) + digits
	return key, sha256.Sum256([]byte(key)), nil
}

// WellFormed reports whether key has the shape of a key: Prefix and
// exactly KeyChars base62 characters. Anything else is unknown without a
// lookup.
func WellFormed(key string) bool {
	if len(key) != KeyLen || !strings.HasPrefix(key, Prefix) {
		return false
	}
	for i := len(Prefix); i < len(key); i++ {
		c := key[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// ValidScope reports whether s matches ScopePattern.
func ValidScope(s string) bool {
	if len(s) == 0 || len(s) > MaxScopeLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == ':' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NormalizeScopes checks every scope against ScopePattern and drops
// repeats, keeping the first occurrence's order; nil becomes empty. It
// returns a client-safe reason when a scope does not match (naming the
// first bad one by index) or more than MaxScopes distinct scopes remain.
func NormalizeScopes(scopes []string) ([]string, string) {
	out := make([]string, 0, len(scopes))
	seen := make(map[string]bool, len(scopes))
	for i, s := range scopes {
		if !ValidScope(s) {
			return nil, fmt.Sprintf("scopes[%d] must match %s", i, ScopePattern)
		}
		if seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	if len(out) > MaxScopes {
		return nil, fmt.Sprintf("at most %d distinct scopes", MaxScopes)
	}
	return out, ""
}

// keyName trims v and returns it, or a client-safe reason why it cannot
// name a key: 1 to MaxNameChars characters, no control characters.
func keyName(v string) (string, string) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", "required"
	case !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxNameChars:
		return "", fmt.Sprintf("at most %d characters", MaxNameChars)
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return "", "must not contain control characters or line breaks"
		}
	}
	return v, ""
}
