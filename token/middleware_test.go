package token

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
)

// tokEnvelope is the error body of api.md.
type tokEnvelope struct {
	Error struct {
		Code      autherr.Code `json:"code"`
		Message   string       `json:"message"`
		RequestID string       `json:"requestId"`
	} `json:"error"`
}

// tokServe runs one request through Middleware(tk) in front of a handler
// that records the claims it saw.
func tokServe(tb testing.TB, tk *Tokens, authorization ...string) (*httptest.ResponseRecorder, *Claims, bool) {
	tb.Helper()
	var (
		seen   *Claims
		called bool
	)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		seen, _ = ClaimsFromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	req := httptest.NewRequest(http.MethodGet, "/api/v1/me/profile", nil)
	req.Header.Set(autherr.RequestIDHeader, "req-1")
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	Middleware(tk)(next).ServeHTTP(rec, req)
	return rec, seen, called
}

func TestMiddleware(t *testing.T) {
	clock := tokNewClock()
	tk := tokNew(t, clock, nil)
	user, session := uuid.New(), uuid.New()
	token, _, err := tk.Issue(user, "alice@example.test", session)
	require.NoError(t, err)

	t.Run("good_token_reaches_handler", func(t *testing.T) {
		for _, h := range []string{"Bearer " + token, "bearer " + token, "BEARER   " + token, " Bearer " + token + " "} {
			rec, c, called := tokServe(t, tk, h)
			require.True(t, called, "header %.20q", h)
			require.Equal(t, http.StatusNoContent, rec.Code)
			require.NotNil(t, c)
			got, err := c.UserID()
			require.NoError(t, err)
			assert.Equal(t, user, got)
			assert.Equal(t, session.String(), c.SessionID)
			assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
		}
	})

	// Each refusal: the handler is not called (if the middleware fell
	// through, an unauthenticated request would reach /me/*), the answer
	// is the envelope with the right code, and the challenge header tells
	// the client which scheme to use (RFC 6750 section 3).
	expiredTokens := tokNew(t, clock, func(c *Config) { c.Now = func() time.Time { return clock.Now().Add(-time.Hour) } })
	expired, _, err := expiredTokens.Issue(user, "alice@example.test", session)
	require.NoError(t, err)
	stranger := tokNew(t, clock, func(c *Config) { c.Signing = tokTestKey(t, 42) })
	forged, _, err := stranger.Issue(user, "alice@example.test", session)
	require.NoError(t, err)

	for _, tc := range []struct {
		name      string
		headers   []string
		code      autherr.Code
		challenge string
	}{
		{"no_header", nil, autherr.Unauthorized, "Bearer"},
		{"empty_header", []string{""}, autherr.Unauthorized, "Bearer"},
		{"basic_scheme", []string{"Basic dXNlcjpwYXNz"}, autherr.Unauthorized, "Bearer"},
		{"bare_token_without_scheme", []string{token}, autherr.Unauthorized, "Bearer"},
		{"bearer_without_token", []string{"Bearer"}, autherr.Unauthorized, "Bearer"},
		{"bearer_spaces_only", []string{"Bearer    "}, autherr.Unauthorized, "Bearer"},
		{"two_headers", []string{"Bearer " + token, "Bearer " + token}, autherr.Unauthorized, "Bearer"},
		{"expired", []string{"Bearer " + expired}, autherr.TokenExpired, `Bearer error="invalid_token"`},
		{"foreign_key", []string{"Bearer " + forged}, autherr.TokenInvalid, `Bearer error="invalid_token"`},
		{"junk", []string{"Bearer a.b.c"}, autherr.TokenInvalid, `Bearer error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, c, called := tokServe(t, tk, tc.headers...)
			require.False(t, called, "handler must not run")
			assert.Nil(t, c)
			require.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.Equal(t, tc.challenge, rec.Header().Get("WWW-Authenticate"))
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var env tokEnvelope
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), "body %s", rec.Body)
			assert.Equal(t, tc.code, env.Error.Code)
			assert.Equal(t, "req-1", env.Error.RequestID)
			assert.NotEmpty(t, env.Error.Message)
			assert.NotContains(t, rec.Body.String(), token[:20], "the token never echoes back")
		})
	}
}

func TestMiddlewareNilTokensPanicsAtSetup(t *testing.T) {
	assert.Panics(t, func() { Middleware(nil) })
}

func TestClaimsContext(t *testing.T) {
	_, ok := ClaimsFromContext(context.Background())
	assert.False(t, ok)
	_, ok = ClaimsFromContext(ContextWithClaims(context.Background(), nil))
	assert.False(t, ok, "nil claims are no claims")
	c := &Claims{Email: "a@b.test"}
	got, ok := ClaimsFromContext(ContextWithClaims(context.Background(), c))
	require.True(t, ok)
	assert.Same(t, c, got)
	// A value under a look-alike key is not claims.
	type tokCtxKeyLookalike struct{}
	_, ok = ClaimsFromContext(context.WithValue(context.Background(), tokCtxKeyLookalike{}, c))
	assert.False(t, ok)
}
