package token

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/mana-how/mana-auth/autherr"
)

// CheckerConfig configures a Checker.
type CheckerConfig struct {
	// Issuer and Audience are what every token must carry (the auth
	// server's MANA_AUTH_BASE_URL and "mana" for the reference server).
	// Required.
	Issuer   string
	Audience string
	// Keys are the auth server's public signing keys: NewStaticKeys of
	// ParseVerifyKeysPEM, or a *JWKS of its /.well-known/jwks.json. Either
	// Keys or JWKSURL is required.
	Keys KeySource
	// JWKSURL, when Keys is nil, is the auth server's key set URL, read
	// through a JWKS with its defaults (https, or http to loopback).
	JWKSURL string
	// Leeway is the clock skew tolerated on exp, iat and nbf; 0 means 30
	// seconds.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Checker verifies access tokens with public keys only: for a service that
// checks the tokens of an auth server it does not run, and so holds no
// private key. It applies exactly the checks of Tokens.Verify and is safe
// for concurrent use.
type Checker struct {
	checks
	keys KeySource
}

// NewChecker validates cfg. It fetches nothing: a JWKS fetches on the
// first token.
func NewChecker(cfg CheckerConfig) (*Checker, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("token: checker: Issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("token: checker: Audience is required")
	case cfg.Keys == nil && cfg.JWKSURL == "":
		return nil, errors.New("token: checker: Keys or JWKSURL is required")
	case cfg.Keys != nil && cfg.JWKSURL != "":
		return nil, errors.New("token: checker: set Keys or JWKSURL, not both")
	case cfg.Leeway < 0:
		return nil, fmt.Errorf("token: checker: Leeway %v is negative", cfg.Leeway)
	}
	if cfg.Keys == nil {
		jwks, err := NewJWKS(JWKSConfig{URL: cfg.JWKSURL, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		cfg.Keys = jwks
	}
	return &Checker{checks: newChecks(cfg.Issuer, cfg.Audience, cfg.Leeway, cfg.Now), keys: cfg.Keys}, nil
}

// Verify checks an access token as Tokens.Verify does and returns its
// claims.
//
// Errors: TOKEN_INVALID, TOKEN_EXPIRED (see Tokens.Verify);
// SERVICE_UNAVAILABLE when the key set cannot be fetched and the token's
// kid is not known from an earlier fetch.
func (c *Checker) Verify(token string) (*Claims, error) {
	if c == nil {
		return nil, errors.New("token: verify token: nil *Checker")
	}
	return c.verify(token, func(kid string) (ed25519.PublicKey, error) {
		// A JWKS fetch runs to its own timeout (JWKSConfig.Timeout).
		pub, err := c.keys.VerifyKey(context.Background(), kid)
		switch {
		case err == nil:
			return pub, nil
		case errors.Is(err, ErrUnknownKey):
			return nil, fmt.Errorf("unknown kid %s", tokQuote(kid))
		default:
			return nil, autherr.Wrap(autherr.ServiceUnavailable, fmt.Errorf("token: signing keys: %w", err), "")
		}
	})
}
