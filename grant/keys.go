package grant

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/mana-how/mana-auth/token"
)

// ParsePublicKeyPEM reads the AI service's RSA public key
// (MANA_AI_PUBLIC_KEY_PEM): one "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY"
// (PKCS#1) block. A key under MinRSABits bits is refused; RecommendedRSABits
// is what a new key should have (`openssl genpkey -algorithm RSA -pkeyopt
// rsa_keygen_bits:3072`, then `openssl pkey -pubout`). A value kept on one
// line with literal \n sequences, as some environment files do, is
// accepted. Errors never quote key bytes.
func ParsePublicKeyPEM(pemBytes []byte) (*rsa.PublicKey, error) {
	block, err := onePEMBlock(pemBytes, "RSA public key")
	if err != nil {
		return nil, err
	}
	var pub *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("grant: RSA public key: not a valid PKIX public key: %w", err)
		}
		var ok bool
		if pub, ok = key.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("grant: RSA public key: the PKIX key is %T, want RSA", key)
		}
	case "RSA PUBLIC KEY":
		if pub, err = x509.ParsePKCS1PublicKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("grant: RSA public key: not a valid PKCS#1 public key: %w", err)
		}
	case "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("grant: RSA public key: the PEM block is a private key (%q); the auth server needs only the public key (openssl pkey -pubout)", block.Type)
	default:
		return nil, fmt.Errorf("grant: RSA public key: PEM block type is %q, want \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"", block.Type)
	}
	if err := checkRSABits(pub); err != nil {
		return nil, fmt.Errorf("grant: RSA public key: %w", err)
	}
	return pub, nil
}

// ParsePrivateKeyPEM reads the AI service's RSA private key
// (MANA_AI_PRIVATE_KEY_PEM): one "PRIVATE KEY" (PKCS#8) or
// "RSA PRIVATE KEY" (PKCS#1) block, at least MinRSABits bits. Literal \n
// sequences are accepted as in ParsePublicKeyPEM. Errors never quote key
// bytes.
func ParsePrivateKeyPEM(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, err := onePEMBlock(pemBytes, "RSA private key")
	if err != nil {
		return nil, err
	}
	var priv *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("grant: RSA private key: not a valid PKCS#8 private key: %w", err)
		}
		var ok bool
		if priv, ok = key.(*rsa.PrivateKey); !ok {
			return nil, fmt.Errorf("grant: RSA private key: the PKCS#8 key is %T, want RSA", key)
		}
	case "RSA PRIVATE KEY":
		if priv, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("grant: RSA private key: not a valid PKCS#1 private key: %w", err)
		}
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("grant: RSA private key: the PEM block is an encrypted PKCS#8 key; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
	default:
		return nil, fmt.Errorf("grant: RSA private key: PEM block type is %q, want \"PRIVATE KEY\" or \"RSA PRIVATE KEY\"", block.Type)
	}
	if err := checkRSABits(&priv.PublicKey); err != nil {
		return nil, fmt.Errorf("grant: RSA private key: %w", err)
	}
	return priv, nil
}

// VerifyKey is an Ed25519 public key of the auth server that grant
// signatures are checked against (token.VerifyKey). An empty ID means the
// key's RFC 7638 thumbprint (Thumbprint), which is the kid the auth server
// gives a signing key unless it was configured with another.
type VerifyKey = token.VerifyKey

// ParseVerifyKeysPEM reads the auth server's token-signing public keys
// from "PUBLIC KEY" PEM blocks (token.ParseVerifyKeysPEM).
func ParseVerifyKeysPEM(pemBytes []byte) ([]VerifyKey, error) {
	return token.ParseVerifyKeysPEM(pemBytes)
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key
// (token.Thumbprint).
func Thumbprint(pub ed25519.PublicKey) string { return token.Thumbprint(pub) }

func checkRSABits(pub *rsa.PublicKey) error {
	if bits := pub.N.BitLen(); bits < MinRSABits {
		return fmt.Errorf("the key has %d bits, want at least %d (%d recommended)", bits, MinRSABits, RecommendedRSABits)
	}
	return nil
}

// onePEMBlock decodes exactly one PEM block without headers.
func onePEMBlock(pemBytes []byte, what string) (*pem.Block, error) {
	block, rest := pem.Decode(normalizePEM(pemBytes))
	if block == nil {
		return nil, fmt.Errorf("grant: %s: no PEM block found", what)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("grant: %s: unexpected data after the PEM block (want exactly one)", what)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("grant: %s: the PEM block has headers (legacy encryption?); want a plain block", what)
	}
	return block, nil
}

// normalizePEM turns a PEM kept on one line with literal "\n" sequences
// (as environment files often hold it) back into lines.
func normalizePEM(b []byte) []byte { return token.NormalizePEM(b) }
