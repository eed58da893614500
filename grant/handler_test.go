package grant_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/grant"
)

const grantPath = "/api/v1/me/ai-mission-grant"

// userHeader names the user in these tests, standing in for the JWT
// middleware.
const userHeader = "X-Test-User"

func userFromHeader(r *http.Request) (uuid.UUID, error) {
	v := r.Header.Get(userHeader)
	if v == "" {
		return uuid.Nil, autherr.New(autherr.Unauthorized, "")
	}
	return uuid.Parse(v)
}

// mount mounts h the way the reference server does.
func mount(t testing.TB, h *grant.Handler) http.Handler {
	t.Helper()
	require.Equal(t, []string{"POST /"}, h.Routes())
	mux := http.NewServeMux()
	mux.Handle("POST "+grantPath, http.StripPrefix(grantPath, h))
	mux.Handle("/", http.NotFoundHandler())
	return mux
}

func newHandler(t testing.TB, iss *grant.Issuer) http.Handler {
	t.Helper()
	h, err := grant.NewHandler(iss, grant.HandlerOptions{UserFromRequest: userFromHeader,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return mount(t, h)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) code(t testing.TB) autherr.Code {
	t.Helper()
	var env struct {
		Error struct {
			Code    autherr.Code   `json:"code"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(a.body, &env), "body %s", a.body)
	return env.Error.Code
}

func post(t testing.TB, h http.Handler, user uuid.UUID, body string) answer {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, grantPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if user != uuid.Nil {
		r.Header.Set(userHeader, user.String())
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, err := io.ReadAll(w.Result().Body)
	require.NoError(t, err)
	return answer{status: w.Code, header: w.Header(), body: b}
}

func TestHandlerIssuesAGrantTheUnwrapperOpens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	h := newHandler(t, f.issuer)
	a := post(t, h, f.user, `{"missionId":"mission-42","ttlSeconds":7200}`)
	require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
	assert.Equal(t, "application/json", a.header.Get("Content-Type"))

	var g grant.Grant
	require.NoError(t, json.Unmarshal(a.body, &g))
	assert.Equal(t, 2*time.Hour, g.ExpiresAt.Sub(g.IssuedAt))
	key, err := f.unwrapper.UnwrapJSON(context.Background(), a.body)
	require.NoError(t, err)
	assert.Equal(t, hkdfIndependent(t, f.master, g.Derivation.Salt, f.user.String(), "mission-42"), key)
	require.Len(t, f.events.events, 1)
	assert.Equal(t, "mission-42", f.events.events[0].MissionID)
	assert.True(t, f.events.events[0].IP.IsValid(), "the client's address goes into the event")
}

func TestHandlerTTL(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	h := newHandler(t, f.issuer)
	cases := []struct {
		body string
		want time.Duration
	}{
		{`{"missionId":"m"}`, 24 * time.Hour},
		{`{"missionId":"m","ttlSeconds":null}`, 24 * time.Hour},
		{`{"missionId":"m","ttlSeconds":0}`, time.Hour},
		{`{"missionId":"m","ttlSeconds":-5}`, time.Hour},
		{`{"missionId":"m","ttlSeconds":3599}`, time.Hour},
		{`{"missionId":"m","ttlSeconds":3601}`, 3601 * time.Second},
		{`{"missionId":"m","ttlSeconds":2592000}`, 30 * 24 * time.Hour},
		{`{"missionId":"m","ttlSeconds":2592001}`, 30 * 24 * time.Hour},
		{`{"missionId":"m","ttlSeconds":1e30}`, 30 * 24 * time.Hour},
		{`{"missionId":"m","ttlSeconds":-1e30}`, time.Hour},
		{`{"missionId":"m","ttlSeconds":99999999999999999999999}`, 30 * 24 * time.Hour},
		{`{"missionId":"m","ttlSeconds":7200.0}`, 2 * time.Hour},
		{`{"missionId":"m","ttlSeconds":1e999}`, 30 * 24 * time.Hour},
	}
	for _, tc := range cases {
		a := post(t, h, f.user, tc.body)
		require.Equal(t, http.StatusOK, a.status, "%s: %s", tc.body, a.body)
		var g grant.Grant
		require.NoError(t, json.Unmarshal(a.body, &g))
		assert.Equal(t, tc.want, g.ExpiresAt.Sub(g.IssuedAt), tc.body)
	}
}

func TestHandlerErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	zk, noVault := uuid.New(), uuid.New()
	f.keys.zk[zk] = true
	h := newHandler(t, f.issuer)
	cases := []struct {
		name   string
		user   uuid.UUID
		body   string
		status int
		code   autherr.Code
		field  string
	}{
		{"no user", uuid.Nil, `{"missionId":"m"}`, 401, autherr.Unauthorized, ""},
		{"zero knowledge", zk, `{"missionId":"m"}`, 409, autherr.ZKActive, ""},
		{"no vault", noVault, `{"missionId":"m"}`, 404, autherr.VaultNotFound, ""},
		{"no body", f.user, ``, 400, autherr.BadRequest, ""},
		{"not JSON", f.user, `{`, 400, autherr.BadRequest, ""},
		{"mission missing", f.user, `{}`, 400, autherr.ValidationFailed, "missionId"},
		{"mission with |", f.user, `{"missionId":"a|b"}`, 400, autherr.ValidationFailed, "missionId"},
		{"mission too long", f.user, `{"missionId":"` + strings.Repeat("x", 201) + `"}`, 400, autherr.ValidationFailed, "missionId"},
		{"mission a number", f.user, `{"missionId":7}`, 400, autherr.BadRequest, ""},
		{"ttl a fraction", f.user, `{"missionId":"m","ttlSeconds":1.5}`, 400, autherr.ValidationFailed, "ttlSeconds"},
		{"ttl a string", f.user, `{"missionId":"m","ttlSeconds":"3600"}`, 400, autherr.ValidationFailed, "ttlSeconds"},
		{"ttl an object", f.user, `{"missionId":"m","ttlSeconds":{}}`, 400, autherr.ValidationFailed, "ttlSeconds"},
		{"too large", f.user, `{"missionId":"` + strings.Repeat("x", 70<<10) + `"}`, 413, autherr.PayloadTooLarge, ""},
	}
	for _, tc := range cases {
		a := post(t, h, tc.user, tc.body)
		assert.Equal(t, tc.status, a.status, "%s: %s", tc.name, a.body)
		assert.Equal(t, tc.code, a.code(t), tc.name)
		assert.Equal(t, "no-store", a.header.Get("Cache-Control"), tc.name)
		if tc.field != "" {
			assert.Contains(t, string(a.body), `"`+tc.field+`"`, tc.name)
		}
	}
	assert.Empty(t, f.events.events)

	// Another method, another path.
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/", nil),
		httptest.NewRequest(http.MethodPost, "/other", strings.NewReader(`{"missionId":"m"}`)),
	} {
		hh, err := grant.NewHandler(f.issuer, grant.HandlerOptions{UserFromRequest: userFromHeader, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		r.Header.Set(userHeader, f.user.String())
		w := httptest.NewRecorder()
		hh.ServeHTTP(w, r)
		assert.NotEqual(t, http.StatusOK, w.Code, "%s %s", r.Method, r.URL.Path)
	}
}

func TestHandlerNotConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	iss, err := grant.NewIssuer(grant.IssuerConfig{Keys: f.keys, Signer: f.tokens})
	require.NoError(t, err)
	h := newHandler(t, iss)
	for _, body := range []string{`{"missionId":"m"}`, `{}`, `nonsense`, ``} {
		a := post(t, h, f.user, body)
		assert.Equal(t, http.StatusServiceUnavailable, a.status, body)
		assert.Equal(t, autherr.GrantNotConfigured, a.code(t), body)
	}
	assert.Zero(t, f.keys.calls)
	// Authentication still comes first.
	a := post(t, h, uuid.Nil, `{"missionId":"m"}`)
	assert.Equal(t, http.StatusUnauthorized, a.status)
}

func TestNewHandlerValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	_, err := grant.NewHandler(nil, grant.HandlerOptions{UserFromRequest: userFromHeader})
	assert.Error(t, err)
	// Without UserFromRequest the user comes from token.Middleware's
	// claims: a request that did not pass it is refused.
	h, err := grant.NewHandler(f.issuer, grant.HandlerOptions{})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(`{"missionId":"m-1"}`)))
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "%s", rec.Body)
	assert.Contains(t, rec.Body.String(), `"UNAUTHORIZED"`)
}

// TestHandlerBodyNeverLogsKeys: the handler's log holds no key bytes.
func TestHandlerBodyNeverLogsKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	var logs bytes.Buffer
	iss, err := grant.NewIssuer(grant.IssuerConfig{PublicKey: &f.priv.PublicKey, Keys: f.keys, Signer: f.tokens,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Now: f.clock.Now})
	require.NoError(t, err)
	h, err := grant.NewHandler(iss, grant.HandlerOptions{UserFromRequest: userFromHeader})
	require.NoError(t, err)
	a := post(t, mount(t, h), f.user, `{"missionId":"mission-42"}`)
	require.Equal(t, http.StatusOK, a.status)
	var g grant.Grant
	require.NoError(t, json.Unmarshal(a.body, &g))
	require.Contains(t, logs.String(), "mission-42", "the issue is logged")
	for _, secret := range []string{g.WrappedKey, g.Derivation.Salt, g.Signature, b64(f.master)} {
		assert.NotContains(t, logs.String(), secret)
	}
}
