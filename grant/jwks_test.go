package grant_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/grant"
)

// jwksServer serves a key set that the test can change or break, and
// counts the fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    string
	status  int
	fetches atomic.Int32
}

func newJWKSServer(t testing.TB, body string) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func jwkOf(kid string, pub ed25519.PublicKey) string {
	return fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"kid":%q,"use":"sig","alg":"EdDSA"}`,
		base64.RawURLEncoding.EncodeToString(pub), kid)
}

func keySet(keys ...string) string {
	out := `{"keys":[`
	for i, k := range keys {
		if i > 0 {
			out += ","
		}
		out += k
	}
	return out + `]}`
}

func newJWKS(t testing.TB, url string, c *clock) *grant.JWKS {
	t.Helper()
	j, err := grant.NewJWKS(grant.JWKSConfig{URL: url, Now: c.Now, MinRefresh: time.Minute, MaxAge: 5 * time.Minute})
	require.NoError(t, err)
	return j
}

// TestUnwrapWithTheServersJWKS: the AI side configured with nothing but the
// server's JWKS URL (served by manaauth's own handler) opens its grants.
func TestUnwrapWithTheServersJWKS(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	srv := httptest.NewServer(f.tokens.JWKSHandler())
	t.Cleanup(srv.Close)
	keys := newJWKS(t, srv.URL, f.clock)
	u, err := grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKey: f.priv, Keys: keys, Now: f.clock.Now})
	require.NoError(t, err)
	g := f.issue(t, "mission-42", 0)
	key, err := u.Unwrap(context.Background(), g)
	require.NoError(t, err)
	assert.Equal(t, hkdfIndependent(t, f.master, g.Derivation.Salt, f.user.String(), "mission-42"), key)

	// A grant from another server (another key set) is refused.
	other := newTokens(t, 8)
	resignWith(g, other)
	_, err = u.Unwrap(context.Background(), g)
	requireReason(t, err, grant.ReasonWrapRejected)
}

func TestJWKSRefreshIsBounded(t *testing.T) {
	t.Parallel()
	a, b := seedKey(1).Public().(ed25519.PublicKey), seedKey(2).Public().(ed25519.PublicKey)
	srv := newJWKSServer(t, keySet(jwkOf("a", a)))
	c := newClock(testNow)
	j := newJWKS(t, srv.URL, c)
	ctx := context.Background()

	got, err := j.VerifyKey(ctx, "a")
	require.NoError(t, err)
	assert.True(t, a.Equal(got))
	require.EqualValues(t, 1, srv.fetches.Load())

	// Unknown kids, however many, fetch at most once per MinRefresh.
	for i := range 50 {
		_, err := j.VerifyKey(ctx, fmt.Sprintf("unknown-%d", i))
		require.ErrorIs(t, err, grant.ErrUnknownKey)
	}
	assert.EqualValues(t, 1, srv.fetches.Load(), "unknown kids within MinRefresh of the last fetch")
	c.Add(time.Minute)
	for i := range 50 {
		_, err := j.VerifyKey(ctx, fmt.Sprintf("unknown-%d", i))
		require.ErrorIs(t, err, grant.ErrUnknownKey)
	}
	assert.EqualValues(t, 2, srv.fetches.Load(), "one more fetch after MinRefresh")

	// A key rotated in is found at the next allowed fetch.
	srv.set(http.StatusOK, keySet(jwkOf("a", a), jwkOf("b", b)))
	_, err = j.VerifyKey(ctx, "b")
	require.ErrorIs(t, err, grant.ErrUnknownKey, "not yet: the last fetch was just now")
	c.Add(time.Minute)
	got, err = j.VerifyKey(ctx, "b")
	require.NoError(t, err)
	assert.True(t, b.Equal(got))
	assert.EqualValues(t, 3, srv.fetches.Load())

	// Known kids of a fresh set cost no fetch; after MaxAge the set is
	// fetched again, and a key removed from it stops verifying.
	for range 20 {
		_, err := j.VerifyKey(ctx, "a")
		require.NoError(t, err)
	}
	assert.EqualValues(t, 3, srv.fetches.Load())
	srv.set(http.StatusOK, keySet(jwkOf("b", b)))
	c.Add(5 * time.Minute)
	_, err = j.VerifyKey(ctx, "a")
	require.ErrorIs(t, err, grant.ErrUnknownKey, "a key the server dropped")
	assert.EqualValues(t, 4, srv.fetches.Load())
}

// TestJWKSOutage: an unreachable key set is infrastructure trouble. Keys
// already known keep verifying; an unknown kid gets an error that is no
// refusal (the grant is not blamed) and Unwrap answers SERVICE_UNAVAILABLE.
func TestJWKSOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	jwks, err := f.tokens.JWKS()
	require.NoError(t, err)
	srv := newJWKSServer(t, string(jwks))
	keys := newJWKS(t, srv.URL, f.clock)
	u, err := grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKey: f.priv, Keys: keys, Now: f.clock.Now})
	require.NoError(t, err)
	g := f.issue(t, "mission-42", 0)

	// Never fetched, server down: no verdict.
	srv.set(http.StatusInternalServerError, "oops")
	_, err = u.Unwrap(context.Background(), g)
	require.Error(t, err)
	assert.Equal(t, grant.Reason(""), grant.ReasonOf(err), "an outage is not a refusal")
	assert.Equal(t, autherr.ServiceUnavailable, autherr.Classify(err).Code)
	// Still down, within MinRefresh: the same, without a new fetch.
	_, err = u.Unwrap(context.Background(), g)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.Classify(err).Code)
	assert.EqualValues(t, 1, srv.fetches.Load())

	// Back up: fetched at the next allowed time.
	srv.set(http.StatusOK, string(jwks))
	f.clock.Add(time.Minute)
	_, err = u.Unwrap(context.Background(), g)
	require.NoError(t, err)

	// Down again after MaxAge: the known key keeps verifying.
	srv.set(http.StatusBadGateway, "")
	f.clock.Add(6 * time.Minute)
	_, err = u.Unwrap(context.Background(), g)
	require.NoError(t, err)
	assert.EqualValues(t, 3, srv.fetches.Load())

	// A closed server (connection refused) is the same kind of trouble.
	srv.Close()
	f.clock.Add(time.Minute)
	resignWith(g, newTokens(t, 9))
	_, err = u.Unwrap(context.Background(), g)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.Classify(err).Code)
}

func TestJWKSConcurrentMissesShareOneFetch(t *testing.T) {
	t.Parallel()
	a := seedKey(1).Public().(ed25519.PublicKey)
	srv := newJWKSServer(t, keySet(jwkOf("a", a)))
	j := newJWKS(t, srv.URL, newClock(testNow))
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = j.VerifyKey(context.Background(), "a")
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, srv.fetches.Load())
}

func TestJWKSDocument(t *testing.T) {
	t.Parallel()
	a, b := seedKey(1).Public().(ed25519.PublicKey), seedKey(2).Public().(ed25519.PublicKey)
	cases := []struct {
		name   string
		body   string
		kid    string
		want   ed25519.PublicKey // nil: ErrUnknownKey
		broken bool              // the document as a whole is refused
	}{
		{"other key types are skipped", keySet(`{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"}`, jwkOf("a", a)), "a", a, false},
		{"encryption keys are skipped", keySet(`{"kty":"OKP","crv":"Ed25519","use":"enc","kid":"e","x":"`+base64.RawURLEncoding.EncodeToString(b)+`"}`, jwkOf("a", a)), "e", nil, false},
		{"malformed x is skipped", keySet(`{"kty":"OKP","crv":"Ed25519","kid":"s","x":"AAAA"}`, jwkOf("a", a)), "s", nil, false},
		{"one kid for two keys is dropped", keySet(jwkOf("d", a), jwkOf("d", b), jwkOf("a", a)), "d", nil, false},
		{"the same key twice is fine", keySet(jwkOf("d", a), jwkOf("d", a)), "d", a, false},
		{"no usable key", keySet(`{"kty":"RSA","kid":"r"}`), "r", nil, true},
		{"not JSON", `<html>`, "a", nil, true},
	}
	for _, tc := range cases {
		srv := newJWKSServer(t, tc.body)
		j := newJWKS(t, srv.URL, newClock(testNow))
		got, err := j.VerifyKey(context.Background(), tc.kid)
		switch {
		case tc.broken:
			require.Error(t, err, tc.name)
			assert.NotErrorIs(t, err, grant.ErrUnknownKey, tc.name)
		case tc.want == nil:
			assert.ErrorIs(t, err, grant.ErrUnknownKey, tc.name)
		default:
			require.NoError(t, err, tc.name)
			assert.True(t, tc.want.Equal(got), tc.name)
		}
	}
}

func TestJWKSConfig(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", "ftp://x/jwks", "http://auth.example.com/.well-known/jwks.json", "/relative"} {
		_, err := grant.NewJWKS(grant.JWKSConfig{URL: url})
		assert.Error(t, err, url)
	}
	for _, url := range []string{"https://auth.example.com/.well-known/jwks.json", "http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks"} {
		_, err := grant.NewJWKS(grant.JWKSConfig{URL: url})
		assert.NoError(t, err, url)
	}
	_, err := grant.NewJWKS(grant.JWKSConfig{URL: "http://auth.internal/jwks", AllowInsecureHTTP: true})
	assert.NoError(t, err)
	_, err = grant.NewJWKS(grant.JWKSConfig{URL: "https://a/jwks", MinRefresh: -time.Second})
	assert.Error(t, err)
}
