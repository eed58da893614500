package token_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/token"
)

func newIssuer(t *testing.T) *token.Tokens {
	t.Helper()
	key, err := token.GenerateSigningKey(rand.Reader)
	require.NoError(t, err)
	tk, err := token.New(token.Config{Issuer: "https://auth.test", Audience: "mana", Signing: key})
	require.NoError(t, err)
	return tk
}

// publicPEM is the signing key's public half as `openssl pkey -pubout`
// writes it.
func publicPEM(t *testing.T, tk *token.Tokens) []byte {
	t.Helper()
	jwks, err := tk.JWKS()
	require.NoError(t, err)
	kid := strings.Split(strings.Split(string(jwks), `"kid":"`)[1], `"`)[0]
	pub, ok := tk.PublicKey(kid)
	require.True(t, ok)
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Guards: a Checker holds public keys only and accepts exactly what the
// issuer's own Verify accepts — a token signed by another key, for another
// audience or issuer is TOKEN_INVALID. A checker that accepted any
// signature (a key lookup that ignored the kid, say) fails the "other
// signer" case.
func TestCheckerFromPublicKeys(t *testing.T) {
	t.Parallel()
	issuer, other := newIssuer(t), newIssuer(t)
	keys, err := token.ParseVerifyKeysPEM(publicPEM(t, issuer))
	require.NoError(t, err)
	static, err := token.NewStaticKeys(keys...)
	require.NoError(t, err)
	c, err := token.NewChecker(token.CheckerConfig{Issuer: "https://auth.test", Audience: "mana", Keys: static})
	require.NoError(t, err)

	user, sid := uuid.New(), uuid.New()
	good, _, err := issuer.Issue(user, "a@x.test", sid)
	require.NoError(t, err)
	claims, err := c.Verify(good)
	require.NoError(t, err)
	got, err := claims.UserID()
	require.NoError(t, err)
	assert.Equal(t, user, got)
	assert.Equal(t, sid.String(), claims.SessionID)

	forged, _, err := other.Issue(user, "a@x.test", sid)
	require.NoError(t, err)
	_, err = c.Verify(forged)
	assert.Equal(t, autherr.TokenInvalid, autherr.CodeOf(err), "a token of another signer: %v", err)

	wrongAud, err := token.NewChecker(token.CheckerConfig{Issuer: "https://auth.test", Audience: "billing", Keys: static})
	require.NoError(t, err)
	_, err = wrongAud.Verify(good)
	assert.Equal(t, autherr.TokenInvalid, autherr.CodeOf(err), "another audience")

	later, err := token.NewChecker(token.CheckerConfig{Issuer: "https://auth.test", Audience: "mana", Keys: static,
		Now: func() time.Time { return time.Now().Add(time.Hour) }})
	require.NoError(t, err)
	_, err = later.Verify(good)
	assert.Equal(t, autherr.TokenExpired, autherr.CodeOf(err))
}

// Guards: a Checker on the issuer's JWKS URL verifies its tokens, and an
// unreachable key set is SERVICE_UNAVAILABLE through the middleware —
// never 401, which would blame the user for our outage.
func TestCheckerFromJWKSURL(t *testing.T) {
	t.Parallel()
	issuer := newIssuer(t)
	srv := httptest.NewServer(issuer.JWKSHandler())
	c, err := token.NewChecker(token.CheckerConfig{Issuer: "https://auth.test", Audience: "mana", JWKSURL: srv.URL})
	require.NoError(t, err)
	tok, _, err := issuer.Issue(uuid.New(), "a@x.test", uuid.New())
	require.NoError(t, err)

	hello := token.Middleware(c)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := token.UserFromRequest(r)
		require.NoError(t, err)
		w.WriteHeader(http.StatusNoContent)
	}))
	serve := func(tok string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		hello.ServeHTTP(rec, req)
		return rec
	}
	assert.Equal(t, http.StatusNoContent, serve(tok).Code)

	// A fresh checker whose key set is down knows no key.
	srv.Close()
	down, err := token.NewChecker(token.CheckerConfig{Issuer: "https://auth.test", Audience: "mana", JWKSURL: srv.URL})
	require.NoError(t, err)
	_, err = down.Verify(tok)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err), "%v", err)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	token.Middleware(down)(http.NotFoundHandler()).ServeHTTP(rec, req)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "%s", rec.Body)

	// The first checker fetched before the outage: it keeps verifying.
	assert.Equal(t, http.StatusNoContent, serve(tok).Code)
}

func TestNewCheckerValidates(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]token.CheckerConfig{
		"no issuer":   {Audience: "mana", JWKSURL: "https://a/jwks"},
		"no audience": {Issuer: "https://a", JWKSURL: "https://a/jwks"},
		"no keys":     {Issuer: "https://a", Audience: "mana"},
		"plain http":  {Issuer: "https://a", Audience: "mana", JWKSURL: "http://auth.example.com/jwks"},
		"negative":    {Issuer: "https://a", Audience: "mana", JWKSURL: "https://a/jwks", Leeway: -time.Second},
	} {
		_, err := token.NewChecker(cfg)
		assert.Error(t, err, name)
	}
	assert.Panics(t, func() { token.Middleware((*token.Checker)(nil)) }, "a typed nil is a wiring bug")
}
