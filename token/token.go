package token

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
)

const (
	tokAlg         = "EdDSA"  // the one JWS algorithm we sign and accept
	tokHeaderType  = "at+jwt" // JOSE header typ of access tokens (RFC 9068 section 2.1)
	tokAccessType  = "access" // the typ claim of access tokens
	tokMaxLen      = 8 << 10  // tokens longer than this are refused before parsing
	tokDefaultTTL  = 15 * time.Minute
	tokDefaultSkew = 30 * time.Second
)

// Config configures Tokens. Zero values mean the documented defaults.
type Config struct {
	// Issuer is the iss claim of every token and the one Verify requires
	// (the reference server uses MANA_AUTH_BASE_URL). Required.
	Issuer string
	// Audience is the aud claim of every token; Verify requires it among
	// the token's audiences. Required.
	Audience string
	// TTL is the lifetime of an access token; 0 means 15 minutes.
	TTL time.Duration
	// Signing signs new tokens. Required. An empty ID means its RFC 7638
	// thumbprint. Its public key is always accepted by Verify.
	Signing SigningKey
	// Verify lists further keys Verify accepts (the previous signing key
	// during a rotation). Empty IDs mean thumbprints; two different keys
	// under one kid are refused.
	Verify []VerifyKey
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, iat and nbf; 0 means
	// 30 seconds.
	Leeway time.Duration
}

// Tokens issues and verifies access tokens: EdDSA (Ed25519) JWTs with a
// kid from our own key set. It verifies locally, without a database, and
// is safe for concurrent use.
type Tokens struct {
	checks
	ttl     time.Duration
	signing SigningKey
	keys    map[string]ed25519.PublicKey // kid → key; signing key included
	jwks    []byte
}

// checks is what Tokens and Checker share: the claims every access token
// must carry, the parser and the clock.
type checks struct {
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	parser   *jwt.Parser
}

func newChecks(issuer, audience string, leeway time.Duration, now func() time.Time) checks {
	if now == nil {
		now = time.Now
	}
	return checks{
		issuer:   issuer,
		audience: audience,
		leeway:   cmp.Or(leeway, tokDefaultSkew),
		now:      now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{tokAlg}),
			jwt.WithStrictDecoding(),
			// Claims are checked by tokCheckClaims, which tells an expired
			// token (TOKEN_EXPIRED) from every other failure (TOKEN_INVALID)
			// and checks expiry last.
			jwt.WithoutClaimsValidation(),
		),
	}
}

// New validates cfg and returns the token service. It refuses a
// missing issuer, audience or signing key, a malformed key, negative
// durations and a kid used by two different keys.
func New(cfg Config) (*Tokens, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("token: Issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("token: Audience is required")
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("token: TTL %v is negative", cfg.TTL)
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("token: Leeway %v is negative", cfg.Leeway)
	}
	if cfg.Signing.Private == nil {
		return nil, errors.New("token: Signing key is required")
	}
	if err := tokCheckPrivate(cfg.Signing.Private); err != nil {
		return nil, fmt.Errorf("token: Signing: %w", err)
	}
	t := &Tokens{
		checks: newChecks(cfg.Issuer, cfg.Audience, cfg.Leeway, cfg.Now),
		ttl:    cmp.Or(cfg.TTL, tokDefaultTTL),
		keys:   make(map[string]ed25519.PublicKey, 1+len(cfg.Verify)),
	}
	pub := cfg.Signing.Private.Public().(ed25519.PublicKey)
	t.signing = SigningKey{ID: cfg.Signing.ID, Private: slices.Clone(cfg.Signing.Private)}
	if t.signing.ID == "" {
		t.signing.ID = tokThumbprint(pub)
	}
	t.keys[t.signing.ID] = slices.Clone(pub)
	set := tokJWKS{Keys: []tokJWK{tokPublicJWK(t.signing.ID, pub)}}
	for i, vk := range cfg.Verify {
		if len(vk.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("token: Verify[%d]: public key is %d bytes, want %d (Ed25519)", i, len(vk.Public), ed25519.PublicKeySize)
		}
		kid := vk.ID
		if kid == "" {
			kid = tokThumbprint(vk.Public)
		}
		if have, dup := t.keys[kid]; dup {
			if have.Equal(vk.Public) {
				continue // the same key listed twice (e.g. the signing key again): harmless
			}
			return nil, fmt.Errorf("token: Verify[%d]: kid %q is already used by a different key", i, kid)
		}
		t.keys[kid] = slices.Clone(vk.Public)
		set.Keys = append(set.Keys, tokPublicJWK(kid, vk.Public))
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("token: encode JWKS: %w", err)
	}
	t.jwks = b
	return t, nil
}

// Claims are the claims of an access token.
type Claims struct {
	jwt.RegisteredClaims        // sub (user id), iss, aud, exp, iat, nbf (optional), jti
	Email                string `json:"email"`
	SessionID            string `json:"sid"`
	Type                 string `json:"typ"` // "access"; the JOSE header typ is "at+jwt" (RFC 9068)
}

// UserID parses the subject, the user's id.
func (c *Claims) UserID() (uuid.UUID, error) {
	if c == nil {
		return uuid.Nil, errors.New("token: claims: nil claims")
	}
	id, err := uuid.Parse(c.Subject)
	if err != nil {
		return uuid.Nil, fmt.Errorf("token: claims: subject is not a UUID: %w", err)
	}
	return id, nil
}

// Issue signs an access token for the user and session and returns it
// with its expiry (now + TTL, to the second, in UTC). Its header is
// {"alg":"EdDSA","kid":…,"typ":"at+jwt"}; its claims iss, sub, aud, exp,
// iat, jti, email, sid and typ "access". A nil user or session id is a
// caller bug and an error (INTERNAL).
func (t *Tokens) Issue(userID uuid.UUID, email string, sessionID uuid.UUID) (token string, expiresAt time.Time, err error) {
	if userID == uuid.Nil {
		return "", time.Time{}, errors.New("token: issue token: nil user id")
	}
	if sessionID == uuid.Nil {
		return "", time.Time{}, errors.New("token: issue token: nil session id")
	}
	jti, err := uuid.NewRandom()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: issue token: token id: %w", err)
	}
	now := t.now()
	exp := jwt.NewNumericDate(now.Add(t.ttl))
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   userID.String(),
			Audience:  jwt.ClaimStrings{t.audience},
			ExpiresAt: exp,
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti.String(),
		},
		Email:     email,
		SessionID: sessionID.String(),
		Type:      tokAccessType,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = t.signing.ID
	tok.Header["typ"] = tokHeaderType
	s, err := tok.SignedString(t.signing.Private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: issue token: sign: %w", err)
	}
	if len(s) > tokMaxLen {
		// Verify would refuse it; an email this long is a bug upstream.
		return "", time.Time{}, fmt.Errorf("token: issue token: token is %d bytes, over the %d byte limit", len(s), tokMaxLen)
	}
	return s, exp.UTC(), nil
}

// Verify checks an access token and returns its claims. It accepts only
// alg EdDSA, only a kid of our key set (signing key and Verify keys), only
// the header parameters alg, kid and typ (so jku, jwk, x5u, x5c, crit …
// are refused, never honoured), header typ "at+jwt", and requires iss,
// aud, sub and sid (canonical, non-nil UUIDs), iat, exp and typ "access";
// iat and nbf may not lie in the future and exp not in the past, each
// beyond the leeway. Tokens over 8 KiB, or with a byte outside the
// base64url alphabet and the two dots, are refused before parsing.
//
// Errors are *autherr.Error: TOKEN_EXPIRED when the token is valid in
// every other respect but expired; TOKEN_INVALID for everything else,
// with the generic message and the reason in Err (for the logs only).
func (t *Tokens) Verify(token string) (*Claims, error) {
	if t == nil {
		return nil, errors.New("token: verify token: nil *Tokens")
	}
	return t.verify(token, func(kid string) (ed25519.PublicKey, error) {
		if pub, ok := t.keys[kid]; ok {
			return pub, nil
		}
		return nil, fmt.Errorf("unknown kid %s", tokQuote(kid))
	})
}

// verify checks token with the key that lookup returns for its kid. An
// error of lookup that is an *autherr.Error (a key set that cannot be
// fetched: SERVICE_UNAVAILABLE) is returned as it is; any other makes the
// token TOKEN_INVALID.
func (t *checks) verify(token string, lookup func(kid string) (ed25519.PublicKey, error)) (*Claims, error) {
	if token == "" {
		return nil, tokInvalid(errors.New("empty token"))
	}
	if len(token) > tokMaxLen {
		return nil, tokInvalid(fmt.Errorf("token is %d bytes, over the %d byte limit", len(token), tokMaxLen))
	}
	if err := tokCheckCompact(token); err != nil {
		return nil, tokInvalid(err)
	}
	c := new(Claims)
	keyfunc := func(tok *jwt.Token) (any, error) { return tokKey(tok, lookup) }
	if _, err := t.parser.ParseWithClaims(token, c, keyfunc); err != nil {
		var outage *autherr.Error
		if errors.As(err, &outage) && outage.Code == autherr.ServiceUnavailable {
			return nil, outage
		}
		return nil, tokInvalid(err)
	}
	if err := t.tokCheckClaims(c); err != nil {
		return nil, err
	}
	return c, nil
}

// tokCheckCompact accepts only the JWS compact form: three segments of
// the base64url alphabet separated by two dots. Go's base64 decoder skips
// '\r' and '\n' even in strict mode, so without this check a newline in
// the signature segment would give a second string that verifies as the
// same token.
func tokCheckCompact(token string) error {
	dots := 0
	for i := 0; i < len(token); i++ {
		switch b := token[i]; {
		case b == '.':
			dots++
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return fmt.Errorf("byte %d (0x%02x) is not in the base64url alphabet", i, b)
		}
	}
	if dots != 2 {
		return fmt.Errorf("%d segments, want 3", dots+1)
	}
	return nil
}

// tokKey is the key lookup of Verify. It runs after the library checked
// that alg is EdDSA and before the signature is verified.
func tokKey(tok *jwt.Token, lookup func(kid string) (ed25519.PublicKey, error)) (any, error) {
	if tok.Method != jwt.SigningMethodEdDSA { // WithValidMethods checks this too
		return nil, fmt.Errorf("alg %q not accepted", tok.Method.Alg())
	}
	for name := range tok.Header {
		switch name {
		case "alg", "kid", "typ":
		default:
			// jku, jwk, x5u, x5c point at keys the token chooses itself;
			// crit names extensions we do not implement. None of them is
			// ever honoured, and a token carrying one is not ours.
			return nil, fmt.Errorf("header parameter %s not accepted", tokQuote(name))
		}
	}
	typ, _ := tok.Header["typ"].(string)
	if !strings.EqualFold(typ, tokHeaderType) && !strings.EqualFold(typ, "application/"+tokHeaderType) {
		return nil, fmt.Errorf("header typ %s, want %q", tokQuote(typ), tokHeaderType)
	}
	kid, ok := tok.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("header kid missing")
	}
	return lookup(kid)
}

// tokCheckClaims validates the claims of a token whose signature checked
// out. Expiry is checked last, so TOKEN_EXPIRED means "valid but expired".
func (t *checks) tokCheckClaims(c *Claims) error {
	now := t.now()
	switch {
	case c.Issuer != t.issuer:
		return tokInvalid(fmt.Errorf("issuer %s, want %q", tokQuote(c.Issuer), t.issuer))
	case !slices.Contains(c.Audience, t.audience):
		return tokInvalid(fmt.Errorf("audience %q not among the token's %d audiences", t.audience, len(c.Audience)))
	case c.Type != tokAccessType:
		return tokInvalid(fmt.Errorf("typ claim %s, want %q", tokQuote(c.Type), tokAccessType))
	}
	if err := tokCheckID(c.Subject); err != nil {
		return tokInvalid(fmt.Errorf("sub: %w", err))
	}
	if err := tokCheckID(c.SessionID); err != nil {
		return tokInvalid(fmt.Errorf("sid: %w", err))
	}
	latest := now.Add(t.leeway)
	switch {
	case c.IssuedAt == nil:
		return tokInvalid(errors.New("iat missing"))
	case c.IssuedAt.After(latest):
		return tokInvalid(fmt.Errorf("iat %d lies in the future", c.IssuedAt.Unix()))
	case c.NotBefore != nil && c.NotBefore.After(latest):
		return tokInvalid(fmt.Errorf("nbf %d lies in the future", c.NotBefore.Unix()))
	case c.ExpiresAt == nil:
		return tokInvalid(errors.New("exp missing"))
	case !now.Before(c.ExpiresAt.Add(t.leeway)):
		return autherr.Wrap(autherr.TokenExpired,
			fmt.Errorf("token: verify token: expired at %s", c.ExpiresAt.UTC().Format(time.RFC3339)), "")
	}
	return nil
}

// tokCheckID accepts only a canonical, non-nil UUID (the form Issue
// writes): no braces, no urn: prefix, no upper case.
func tokCheckID(s string) error {
	id, err := uuid.Parse(s)
	if err != nil {
		return fmt.Errorf("%s is not a UUID", tokQuote(s))
	}
	if id == uuid.Nil || id.String() != s {
		return fmt.Errorf("%s is not a canonical non-nil UUID", tokQuote(s))
	}
	return nil
}

// tokInvalid is TOKEN_INVALID with the generic message and cause as Err.
func tokInvalid(cause error) *autherr.Error {
	return autherr.Wrap(autherr.TokenInvalid, fmt.Errorf("token: verify token: %w", cause), "")
}

// tokQuote quotes an attacker-chosen string for an error message, cut to
// 64 bytes so a hostile token cannot flood the logs.
func tokQuote(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "…"
	}
	return strconv.Quote(s)
}

// JWKS returns the public key set as JSON:
// {"keys":[{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"use":"sig","alg":"EdDSA"},…]},
// the signing key first, then the Verify keys in configuration order.
func (t *Tokens) JWKS() ([]byte, error) {
	return bytes.Clone(t.jwks), nil
}

// JWKSHandler serves JWKS() to GET and HEAD with Content-Type
// application/json and Cache-Control "public, max-age=300" (a rotated-in
// key is published before it signs, so five minutes of caching is safe).
// Other methods answer 400 BAD_REQUEST with an Allow header. Mount it at
// GET /.well-known/jwks.json.
func (t *Tokens) JWKSHandler() http.Handler {
	body := bytes.Clone(t.jwks)
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return autherr.New(autherr.BadRequest, "method not allowed: use GET")
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return nil
		}
		if _, err := w.Write(body); err != nil {
			return fmt.Errorf("token: write JWKS: %w", err)
		}
		return nil
	})
}

// Sign signs msg with the current signing key (Ed25519, RFC 8032) and
// returns the signature and the key's kid, which the JWKS publishes; for
// mission grants.
func (t *Tokens) Sign(msg []byte) (sig []byte, kid string) {
	return ed25519.Sign(t.signing.Private, msg), t.signing.ID
}

// PublicKey returns a copy of the verification key with the given kid (the
// signing key or a Verify key); false when the kid is not ours.
func (t *Tokens) PublicKey(kid string) (ed25519.PublicKey, bool) {
	pub, ok := t.keys[kid]
	if !ok {
		return nil, false
	}
	return slices.Clone(pub), true
}

// TTL is the lifetime of the access tokens Issue signs.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// DeriveKey derives n bytes for purpose from the signing key with
// HKDF-SHA256 (the purpose is the HKDF info). Every instance configured
// with the same signing key derives the same bytes, so keys that several
// instances must agree on (the refresh token chain, CSRF tokens) need no
// configuration of their own. Distinct purposes give independent keys.
func (t *Tokens) DeriveKey(purpose string, n int) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, t.signing.Private.Seed(), nil, purpose, n)
	if err != nil {
		return nil, fmt.Errorf("token: derive key %q: %w", purpose, err)
	}
	return k, nil
}
