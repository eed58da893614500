package passkey_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/passkey"
)

// TestDisabledAccountCannotSignIn: the assertion is right, the account is
// disabled: 403 ACCOUNT_DISABLED, recorded as LOGIN_REFUSED, no session,
// the counter not stored. Negative control: StartSession without its
// disabled check answers 200.
func TestDisabledAccountCannotSignIn(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "disabled@example.com")
	k := newSoftKey(u.id)
	pk := p.register(t, u.access, k)
	_, err := p.DB.Owner.Exec(context.Background(), `UPDATE auth.users SET disabled_at = now() WHERE id = $1`, u.id)
	require.NoError(t, err)
	sessions := p.sessions(t, u.id)

	c := p.signInOptions(t, "")
	st, body, _ := p.verify(t, c.ChallengeID, k.get(t, c.Options))
	authtest.RequireError(t, st, body, http.StatusForbidden, "ACCOUNT_DISABLED")
	assert.Equal(t, sessions, p.sessions(t, u.id))
	assert.Zero(t, p.signCount(t, pk.ID))
	assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE user_id = $1
		AND event_type = 'LOGIN_REFUSED' AND metadata->>'method' = 'passkey' AND metadata->>'reason' = 'account_disabled'`, u.id))
}

// TestLockedAccountCannotSignInWithAPasskey: every credential path passes
// one gate; five wrong passwords lock the passkey out too (429
// ACCOUNT_LOCKED, the challenge left unspent) until the lock ends.
// Negative control: a sign-in that skips the gate answers 200.
func TestLockedAccountCannotSignInWithAPasskey(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "locked@example.com")
	k := newSoftKey(u.id)
	p.register(t, u.access, k)
	for range 5 {
		st, _, _ := p.Call(t, "POST", authtest.AuthPrefix+"/login", map[string]any{"email": u.email, "password": "wrong-password-123"}, nil)
		require.Equal(t, http.StatusUnauthorized, st)
	}
	c := p.signInOptions(t, u.email)
	st, body, _ := p.verify(t, c.ChallengeID, k.get(t, c.Options))
	authtest.RequireError(t, st, body, http.StatusTooManyRequests, "ACCOUNT_LOCKED")
	assert.False(t, p.spent(t, c.ChallengeID))
	p.Clock.Advance(p.Gate.Policy().LockFor)
	p.signIn(t, u.email, k)
}

// fakeFactor is a second factor active for some users: what the mfa
// package answers through manaauth.SecondFactor.
type fakeFactor struct {
	mu      sync.Mutex
	active  map[uuid.UUID]bool
	methods []lockout.Method
}

func (f *fakeFactor) Challenge(_ context.Context, userID uuid.UUID, method lockout.Method, _ manaauth.Client) (*manaauth.MFAChallenge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.methods = append(f.methods, method)
	if !f.active[userID] {
		return nil, nil
	}
	return &manaauth.MFAChallenge{Token: "mfa-" + userID.String(), Methods: []string{"totp", "recovery"}}, nil
}

// TestSecondFactorWithoutUserVerification: a sign-in with user
// verification satisfies MFA by itself; one without it, on an account
// with an active second factor, answers that factor's challenge — no
// tokens, no cookie, no session — while the counter is still stored.
// Without an active factor it signs in. Negative controls: asking the
// factor regardless of UV fails the first check; ignoring the factor
// answers tokens in the second.
func TestSecondFactorWithoutUserVerification(t *testing.T) {
	t.Parallel()
	factor := &fakeFactor{active: map[uuid.UUID]bool{}}
	p := newPkFixture(t, pkOptions{secondFactor: factor})
	u := p.user(t, "mfa@example.com")
	k := newSoftKey(u.id)
	pk := p.register(t, u.access, k)
	factor.mu.Lock()
	factor.active[u.id] = true
	factor.methods = nil
	factor.mu.Unlock()

	p.signIn(t, u.email, k)
	factor.mu.Lock()
	assert.Empty(t, factor.methods, "a verified user is not asked for a second factor")
	factor.mu.Unlock()

	sessions := p.sessions(t, u.id)
	noUV := k.clone()
	noUV.auth.Options.UserNotVerified = true
	c := p.signInOptions(t, u.email)
	st, body, resp := p.verify(t, c.ChallengeID, noUV.get(t, c.Options))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, true, body["mfaRequired"])
	assert.Equal(t, "mfa-"+u.id.String(), body["mfaToken"])
	assert.NotContains(t, body, "accessToken")
	assert.Empty(t, resp.Cookies(), "no cookie before the second step")
	assert.Equal(t, sessions, p.sessions(t, u.id), "no session before the second step")
	assert.Equal(t, 2, p.signCount(t, pk.ID), "the verified assertion's counter is stored")
	assert.Equal(t, 1, p.events(t, u.id, "MFA_REQUIRED"))
	factor.mu.Lock()
	assert.Equal(t, []lockout.Method{lockout.Passkey}, factor.methods)
	factor.active[u.id] = false
	factor.mu.Unlock()

	body = p.signIn(t, u.email, noUV)
	assert.NotEmpty(t, body["accessToken"], "no active factor: the passkey alone signs in")
}

// TestDatabaseOutageIs503AndCountsNothing: with the passkey service's
// database cut, every route answers 503, and after it comes back nothing
// was counted: no cooldown (more than ten 503 verifications went by), no
// attempt rows, and the credential signs in. Negative control: counting
// failures before the lookup succeeded would leave the credential (or
// IP) cooling down.
func TestDatabaseOutageIs503AndCountsNothing(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{viaProxy: true})
	u := p.user(t, "outage@example.com")
	k := newSoftKey(u.id)
	pk := p.register(t, u.access, k)
	c := p.signInOptions(t, u.email)
	assertion := k.get(t, c.Options)

	p.proxy.Cut()
	for range passkey.FailureRate.Limit + 2 {
		st, body, _ := p.verify(t, c.ChallengeID, assertion)
		authtest.RequireError(t, st, body, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	}
	for _, r := range []struct{ method, path string }{
		{"POST", "/authenticate/options"}, {"POST", "/register/options"}, {"GET", "/"},
		{"PATCH", "/" + pk.ID.String()}, {"DELETE", "/" + pk.ID.String()},
	} {
		var body any
		if r.method == "PATCH" {
			body = map[string]any{"name": "x"}
		}
		st, out, _ := p.Call(t, r.method, pkPrefix+r.path, body, authtest.Bearer(u.access))
		authtest.RequireError(t, st, out, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	}
	p.proxy.Restore()

	st, body, _ := p.verify(t, c.ChallengeID, assertion)
	require.Equal(t, http.StatusOK, st, "the challenge was not spent during the outage: %v", body)
	assert.Zero(t, p.OwnerInt(t, `SELECT count(*) FROM auth.login_attempts WHERE NOT successful`))
	assert.Zero(t, p.OwnerInt(t, `SELECT coalesce(sum(cardinality(failures)), 0) FROM auth.lockouts`))
}

// TestUnconfiguredHandler: a server without passkeys mounts the routes
// all the same; the capability says false and the rest answer 404.
func TestUnconfiguredHandler(t *testing.T) {
	t.Parallel()
	h, err := passkey.NewHandler(nil, passkey.HandlerOptions{})
	require.NoError(t, err)
	srv := httptest.NewServer(http.StripPrefix(pkPrefix, h))
	t.Cleanup(srv.Close)
	st, body, err := authtest.SendJSON(context.Background(), srv.Client(), "GET", srv.URL+pkPrefix+"/capability", nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, map[string]any{"available": false}, body)
	for _, route := range h.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if path == "/capability" {
			continue
		}
		path = strings.NewReplacer("{$}", "", "{id}", uuid.NewString()).Replace(path)
		st, body, err := authtest.SendJSON(context.Background(), srv.Client(), method, srv.URL+pkPrefix+path, nil, nil)
		require.NoError(t, err)
		authtest.RequireError(t, st, body, http.StatusNotFound, "NOT_FOUND")
	}
	assert.Len(t, h.Routes(), 8, "the eight routes of api.md")

	p := newPkFixture(t, pkOptions{})
	st, body, _ = p.Call(t, "GET", pkPrefix+"/capability", nil, nil)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, map[string]any{"available": true}, body)
}

// TestNewValidatesConfig: what New refuses.
func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	good := passkey.Config{Accounts: p.Auth, Pool: p.Pool, RPID: "example.com", Origins: []string{"https://example.com"},
		Mailer: p.Mailer, DecoyKey: testDecoyKey}
	svc, err := passkey.New(good)
	require.NoError(t, err)
	require.NoError(t, svc.Close())
	for name, change := range map[string]func(c *passkey.Config){
		"no accounts":            func(c *passkey.Config) { c.Accounts = nil },
		"no pool":                func(c *passkey.Config) { c.Pool = nil },
		"no mailer":              func(c *passkey.Config) { c.Mailer = nil },
		"short decoy key":        func(c *passkey.Config) { c.DecoyKey = make([]byte, 31) },
		"no RP ID":               func(c *passkey.Config) { c.RPID = "" },
		"IPv4 RP ID":             func(c *passkey.Config) { c.RPID = "192.0.2.1"; c.Origins = []string{"https://192.0.2.1"} },
		"IPv6 RP ID":             func(c *passkey.Config) { c.RPID = "::1" },
		"RP ID with a port":      func(c *passkey.Config) { c.RPID = "example.com:443" },
		"RP ID with a scheme":    func(c *passkey.Config) { c.RPID = "https://example.com" },
		"no origins":             func(c *passkey.Config) { c.Origins = nil },
		"origin of another site": func(c *passkey.Config) { c.Origins = []string{"https://example.org"} },
		"origin on a lookalike":  func(c *passkey.Config) { c.Origins = []string{"https://badexample.com"} },
		"plain http":             func(c *passkey.Config) { c.Origins = []string{"http://example.com"} },
		"origin with a path":     func(c *passkey.Config) { c.Origins = []string{"https://example.com/app"} },
		"UV discouraged":         func(c *passkey.Config) { c.UserVerification = "discouraged" },
	} {
		c := good
		change(&c)
		_, err := passkey.New(c)
		assert.Error(t, err, name)
	}
	for name, change := range map[string]func(c *passkey.Config){
		"a subdomain origin":    func(c *passkey.Config) { c.Origins = []string{"https://auth.example.com:8443", "https://example.com/"} },
		"http on localhost":     func(c *passkey.Config) { c.RPID = "localhost"; c.Origins = []string{"http://localhost:8080"} },
		"upper-case RP ID":      func(c *passkey.Config) { c.RPID = "Example.COM" },
		"UV required":           func(c *passkey.Config) { c.UserVerification = "required" },
		"app.localhost on http": func(c *passkey.Config) { c.RPID = "app.localhost"; c.Origins = []string{"http://app.localhost:3000"} },
	} {
		c := good
		change(&c)
		svc, err := passkey.New(c)
		if assert.NoError(t, err, name) {
			require.NoError(t, svc.Close())
		}
	}
}
