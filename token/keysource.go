package token

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrUnknownKey is what a KeySource returns for a kid it does not hold.
var ErrUnknownKey = errors.New("token: unknown signing key id")

// KeySource resolves a kid to one of the auth server's Ed25519 public
// keys, for a verifier that holds no private key (a Checker, the grant
// unwrapper). VerifyKey returns ErrUnknownKey (possibly wrapped) when the
// kid is not among the server's keys, and any other error when the keys
// cannot be obtained (the JWKS is unreachable) — an outage, never a
// refusal. StaticKeys and *JWKS implement it.
type KeySource interface {
	VerifyKey(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

var (
	_ KeySource = (*StaticKeys)(nil)
	_ KeySource = (*JWKS)(nil)
)

// StaticKeys is a fixed set of verification keys by kid.
type StaticKeys struct {
	keys map[string]ed25519.PublicKey
}

// NewStaticKeys indexes keys by ID (the thumbprint when empty). A key of
// the wrong size, or two different keys under one kid, is an error.
func NewStaticKeys(keys ...VerifyKey) (*StaticKeys, error) {
	if len(keys) == 0 {
		return nil, errors.New("token: NewStaticKeys: no keys")
	}
	s := &StaticKeys{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for i, k := range keys {
		if len(k.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("token: verify key %d: %d bytes, want %d (Ed25519)", i, len(k.Public), ed25519.PublicKeySize)
		}
		kid := k.ID
		if kid == "" {
			kid = Thumbprint(k.Public)
		}
		if have, dup := s.keys[kid]; dup && !have.Equal(k.Public) {
			return nil, fmt.Errorf("token: verify key %d: kid %q is already used by a different key", i, kid)
		}
		s.keys[kid] = append(ed25519.PublicKey(nil), k.Public...)
	}
	return s, nil
}

// VerifyKey returns the key with the given kid, or ErrUnknownKey.
func (s *StaticKeys) VerifyKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// ParseVerifyKeysPEM reads one or more "PUBLIC KEY" (PKIX) blocks holding
// Ed25519 keys — the auth server's token-signing public keys
// (`openssl pkey -in signing.pem -pubout`) — each with its thumbprint as
// ID. A private key is refused: a verifier never needs the server's
// signing key. A PEM kept on one line with literal \n sequences (as
// environment files often hold it) is accepted.
func ParseVerifyKeysPEM(pemBytes []byte) ([]VerifyKey, error) {
	rest := NormalizePEM(pemBytes)
	var keys []VerifyKey
	for i := 0; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("token: signing public key %d: the PEM block is a private key (%q); give the public key only (openssl pkey -pubout)", i+1, block.Type)
			}
			return nil, fmt.Errorf("token: signing public key %d: PEM block type is %q, want \"PUBLIC KEY\"", i+1, block.Type)
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("token: signing public key %d: not a valid PKIX public key: %w", i+1, err)
		}
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("token: signing public key %d: the key is %T, want Ed25519", i+1, key)
		}
		keys = append(keys, VerifyKey{ID: Thumbprint(pub), Public: pub})
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("token: signing public keys: unexpected data that is not a PEM block")
	}
	if len(keys) == 0 {
		return nil, errors.New("token: signing public keys: no PEM block found (want \"PUBLIC KEY\" blocks with Ed25519 keys)")
	}
	return keys, nil
}

// NormalizePEM turns a PEM kept on one line with literal "\n" sequences
// back into lines; any other input is returned as is.
func NormalizePEM(b []byte) []byte {
	s := string(b)
	if !strings.Contains(s, "\n") && strings.Contains(s, `\n`) {
		s = strings.ReplaceAll(s, `\n`, "\n")
	}
	return []byte(s)
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key
// (RFC 8037 section 2): SHA-256 over {"crv":"Ed25519","kty":"OKP","x":…},
// base64url without padding — the kid this package gives a key by
// default.
func Thumbprint(pub ed25519.PublicKey) string { return tokThumbprint(pub) }

// MaxKIDLength bounds a key id read from a token or a key set.
const MaxKIDLength = 256

// validKID reports whether kid is a plausible key id: 1 to MaxKIDLength
// bytes of printable UTF-8 (so that it can be logged and stored as is).
func validKID(kid string) bool {
	return kid != "" && len(kid) <= MaxKIDLength && utf8.ValidString(kid) && !strings.ContainsFunc(kid, unicode.IsControl)
}
