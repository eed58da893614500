package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
)

// SigningKey is the Ed25519 key that signs access tokens (and mission
// grants), with its key id: the "kid" header of every token it signs and
// the "kid" of its entry in the JWKS. An empty ID means the RFC 7638 JWK
// thumbprint of the public key (base64url, no padding), which is what
// GenerateSigningKey and ParseSigningKeyPEM set.
type SigningKey struct {
	ID      string
	Private ed25519.PrivateKey
}

// VerifyKey is a public key accepted on verification only: the previous
// signing key, kept during a rotation until the tokens it signed have
// expired. An empty ID means the RFC 7638 thumbprint of Public.
type VerifyKey struct {
	ID     string
	Public ed25519.PublicKey
}

// GenerateSigningKey makes a new Ed25519 signing key from rand (nil means
// a secure random source) with the thumbprint as its ID.
func GenerateSigningKey(rand io.Reader) (SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return SigningKey{}, fmt.Errorf("token: generate signing key: %w", err)
	}
	return SigningKey{ID: tokThumbprint(pub), Private: priv}, nil
}

// ParseSigningKeyPEM reads an Ed25519 private key in PKCS#8 PEM form
// ("-----BEGIN PRIVATE KEY-----", what `openssl genpkey -algorithm ed25519`
// writes) and gives it its thumbprint as ID. Exactly one PEM block is
// accepted; an encrypted, PKCS#1, SEC 1, OpenSSH or non-Ed25519 key is
// refused with an error that says which it was. Errors never quote key
// bytes.
func ParseSigningKeyPEM(pemBytes []byte) (SigningKey, error) {
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return SigningKey{}, errors.New("token: signing key: no PEM block found (want a PKCS#8 \"PRIVATE KEY\" block, e.g. from `openssl genpkey -algorithm ed25519`)")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return SigningKey{}, errors.New("token: signing key: unexpected data after the PEM block (want exactly one PKCS#8 \"PRIVATE KEY\" block)")
	}
	switch block.Type {
	case "PRIVATE KEY":
	case "ENCRYPTED PRIVATE KEY":
		return SigningKey{}, errors.New("token: signing key: the PEM block is an encrypted PKCS#8 key; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
	case "OPENSSH PRIVATE KEY":
		return SigningKey{}, errors.New("token: signing key: OpenSSH key format is not supported; want PKCS#8 (`openssl genpkey -algorithm ed25519`)")
	case "RSA PRIVATE KEY", "EC PRIVATE KEY":
		return SigningKey{}, fmt.Errorf("token: signing key: PEM block %q is not an Ed25519 key; want a PKCS#8 \"PRIVATE KEY\" block with an Ed25519 key", block.Type)
	default:
		return SigningKey{}, fmt.Errorf("token: signing key: PEM block type is %q, want \"PRIVATE KEY\" (PKCS#8 Ed25519)", block.Type)
	}
	if len(block.Headers) != 0 {
		return SigningKey{}, errors.New("token: signing key: the PEM block has headers (legacy encryption?); want a plain PKCS#8 \"PRIVATE KEY\" block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		// x509's parse errors describe the structure, never the key bytes.
		return SigningKey{}, fmt.Errorf("token: signing key: not a valid PKCS#8 private key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return SigningKey{}, fmt.Errorf("token: signing key: the PKCS#8 key is %s, want Ed25519 (`openssl genpkey -algorithm ed25519`)", tokKeyKind(key))
	}
	return SigningKey{ID: tokThumbprint(priv.Public().(ed25519.PublicKey)), Private: priv}, nil
}

// MarshalPEM encodes the private key as a PKCS#8 "PRIVATE KEY" PEM block,
// the form ParseSigningKeyPEM reads. The ID is not stored: it is the
// thumbprint again when parsed back.
func (k SigningKey) MarshalPEM() ([]byte, error) {
	if err := tokCheckPrivate(k.Private); err != nil {
		return nil, fmt.Errorf("token: marshal signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("token: marshal signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// tokCheckPrivate reports whether priv is a well-formed Ed25519 private
// key: 64 bytes whose second half is the public key of the seed in the
// first half (a key pasted together from two keys would sign tokens that
// its published public key does not verify).
func tokCheckPrivate(priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("private key is %d bytes, want %d (Ed25519)", len(priv), ed25519.PrivateKeySize)
	}
	derived := ed25519.NewKeyFromSeed(priv.Seed())
	if subtle.ConstantTimeCompare(derived, priv) != 1 {
		return errors.New("private key is inconsistent: its public half does not match its seed")
	}
	return nil
}

// tokKeyKind names the algorithm of a parsed PKCS#8 key for error
// messages.
func tokKeyKind(key any) string {
	name := fmt.Sprintf("%T", key)
	switch {
	case strings.Contains(name, "rsa."):
		return "an RSA key"
	case strings.Contains(name, "ecdsa."):
		return "an ECDSA key"
	case strings.Contains(name, "ecdh."):
		return "an ECDH (X25519) key"
	default:
		return "a " + name
	}
}

// tokB64 is the JOSE base64url encoding without padding.
var tokB64 = base64.RawURLEncoding

// tokThumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key
// (RFC 8037 section 2): SHA-256 over the required members in
// lexicographic order, without whitespace, base64url without padding.
func tokThumbprint(pub ed25519.PublicKey) string {
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + tokB64.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return tokB64.EncodeToString(sum[:])
}

// tokJWK is one public key of the JWKS (RFC 8037 OKP form).
type tokJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// tokJWKS is the JSON Web Key Set document.
type tokJWKS struct {
	Keys []tokJWK `json:"keys"`
}

func tokPublicJWK(kid string, pub ed25519.PublicKey) tokJWK {
	return tokJWK{Kty: "OKP", Crv: "Ed25519", X: tokB64.EncodeToString(pub), Kid: kid, Use: "sig", Alg: tokAlg}
}
