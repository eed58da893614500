package manaauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
)

// loginAs logs in with a user agent of its own, so that sessions can be
// told apart in the list.
func loginAs(t testing.TB, f *fixture, email, ua string) sessPair {
	t.Helper()
	st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": email, "password": sessPassword},
		map[string]string{"User-Agent": ua})
	require.Equal(t, http.StatusOK, st, "login %s: %v", email, body)
	return sessPairOf(t, body)
}

func sessionsOf(t testing.TB, f *fixture, access string) []map[string]any {
	t.Helper()
	st, body, _ := f.call(t, "GET", "/sessions", nil, sessBearer(access))
	require.Equal(t, http.StatusOK, st, "GET /sessions: %v", body)
	raw, _ := body["sessions"].([]any)
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i], _ = r.(map[string]any)
	}
	return out
}

// TestSessionsListRevokeAndLiveCheck: two logins are two sessions; the list
// marks the caller's; revoking the other kills its refresh family at once
// and its access token on the live-session routes within the cache time —
// on the instance that revoked at once, on another instance once its
// cached answer is older than 5 s — while /validate, which is stateless,
// still says valid until the token expires (api.md "Sessions").
//
// If revocation only marked the row without the live check, the last
// request on the second instance would still answer 200; if the cache had
// no time bound, it would answer 200 forever; if the list did not filter
// revoked sessions, it would still show two.
func TestSessionsListRevokeAndLiveCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	const email = "sessions@example.com"
	sessSeedUsers(t, f, fastParams, sessPassword, email)
	laptop := loginAs(t, f, email, "laptop/1")
	f.clock.Advance(time.Second)
	phone := loginAs(t, f, email, "phone/2")

	list := sessionsOf(t, f, laptop.Access)
	require.Len(t, list, 2)
	assert.Equal(t, "phone/2", list[0]["userAgent"], "newest first")
	assert.Equal(t, false, list[0]["current"])
	assert.Equal(t, "laptop/1", list[1]["userAgent"])
	assert.Equal(t, true, list[1]["current"], "the caller's own session")
	for _, s := range list {
		assert.Equal(t, "password", s["method"])
		for _, k := range []string{"id", "createdAt", "lastUsedAt", "expiresAt", "ip"} {
			assert.Contains(t, s, k)
		}
	}
	phoneID, _ := list[0]["id"].(string)

	// A second instance on the same database: its own live-session cache.
	other := httptest.NewServer(manaauth.NewHandler(f.svc, manaauth.HandlerOptions{}))
	t.Cleanup(other.Close)
	otherSessions := func(access string) (int, map[string]any) {
		st, body, err := authtest.SendJSON(bg, other.Client(), "GET", other.URL+"/sessions", nil, sessBearer(access))
		require.NoError(t, err)
		return st, body
	}
	st, _ := otherSessions(phone.Access)
	require.Equal(t, http.StatusOK, st, "warms the second instance's cache")

	st, body, _ := f.call(t, "DELETE", "/sessions/"+phoneID, nil, sessBearer(laptop.Access))
	require.Equal(t, http.StatusNoContent, st, "revoke: %v", body)

	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": phone.Refresh}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	st, body, _ = f.call(t, "GET", "/sessions", nil, sessBearer(phone.Access))
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")

	st, _ = otherSessions(phone.Access)
	assert.Equal(t, http.StatusOK, st, "within the cache time the second instance still answers from its cache")
	f.clock.Advance(manaauthLiveTTL)
	st, body = otherSessions(phone.Access)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")

	st, body, _ = f.call(t, "POST", "/validate", map[string]any{"token": phone.Access}, nil)
	assert.Equal(t, http.StatusOK, st, "/validate is stateless: valid until expiry (documented): %v", body)

	assert.Len(t, sessionsOf(t, f, laptop.Access), 1)
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'SESSION_REVOKED'
		AND metadata->>'sessionId' = $1`, phoneID))

	// Revoking again is a no-op; another user's session, or no session, is 404.
	st, _, _ = f.call(t, "DELETE", "/sessions/"+phoneID, nil, sessBearer(laptop.Access))
	assert.Equal(t, http.StatusNoContent, st)
	sessSeedUsers(t, f, fastParams, sessPassword, "stranger@example.com")
	stranger := loginAs(t, f, "stranger@example.com", "x")
	strangerID, _ := sessionsOf(t, f, stranger.Access)[0]["id"].(string)
	for _, id := range []string{strangerID, uuid.NewString(), "not-a-uuid"} {
		st, body, _ = f.call(t, "DELETE", "/sessions/"+id, nil, sessBearer(laptop.Access))
		requireError(t, st, body, http.StatusNotFound, "NOT_FOUND")
	}
	assert.Len(t, sessionsOf(t, f, stranger.Access), 1, "another user's session survives")
}

// manaauthLiveTTL is token.MaxLiveTTL: the longest a cached answer lives.
const manaauthLiveTTL = 5 * time.Second

func TestRevokeOtherSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	const email = "others@example.com"
	sessSeedUsers(t, f, fastParams, sessPassword, email)
	a := loginAs(t, f, email, "a")
	b := loginAs(t, f, email, "b")
	c := loginAs(t, f, email, "c")
	st, body, _ := f.call(t, "POST", "/sessions/revoke-others", nil, sessBearer(b.Access))
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	list := sessionsOf(t, f, b.Access)
	require.Len(t, list, 1)
	assert.Equal(t, "b", list[0]["userAgent"])
	for _, p := range []sessPair{a, c} {
		st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p.Refresh}, nil)
		requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	}
	st, _, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": b.Refresh}, nil)
	assert.Equal(t, http.StatusOK, st, "the caller's session survives")
}

// TestRefreshUpdatesLastUsedAt: last_used_at moves on refresh (not per
// request).
func TestRefreshUpdatesLastUsedAt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	const email = "lastused@example.com"
	sessSeedUsers(t, f, fastParams, sessPassword, email)
	p := loginAs(t, f, email, "ua")
	before := sessionsOf(t, f, p.Access)[0]["lastUsedAt"]
	f.clock.Advance(time.Minute)
	assert.Equal(t, before, sessionsOf(t, f, p.Access)[0]["lastUsedAt"], "a request does not touch it")
	st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.NotEqual(t, before, sessionsOf(t, f, p.Access)[0]["lastUsedAt"], "a refresh does")
}

// TestDisabledAccountCannotSignIn: a disabled account is refused on every
// credential path with 403 ACCOUNT_DISABLED — only after the right
// password, so the answer tells a stranger nothing — its sessions are
// revoked at once and its refresh tokens stop working; enabling it lets it
// sign in again. If Disable did not revoke the sessions, the refresh below
// would succeed; if login checked the flag before the password, the wrong
// password would answer 403 and reveal the account.
func TestDisabledAccountCannotSignIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	const email = "disabled@example.com"
	sessSeedUsers(t, f, fastParams, sessPassword, email)
	p := loginAs(t, f, email, "ua")
	info, err := f.svc.UserByEmail(bg, email)
	require.NoError(t, err)

	changed, revoked, err := f.svc.Disable(bg, info.ID, "abuse report 17")
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Equal(t, 1, revoked)

	st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": email, "password": sessPassword}, nil)
	requireError(t, st, body, http.StatusForbidden, "ACCOUNT_DISABLED")
	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": email, "password": "wrong password here"}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p.Refresh}, nil)
	requireError(t, st, body, http.StatusForbidden, "ACCOUNT_DISABLED")
	st, body, _ = f.call(t, "GET", "/sessions", nil, sessBearer(p.Access))
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")

	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'ACCOUNT_DISABLED'
		AND user_id = $1 AND metadata->>'reason' = 'abuse report 17'`, info.ID))
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'LOGIN_REFUSED'
		AND user_id = $1 AND metadata->>'reason' = 'account_disabled'`, info.ID))
	lo := sessLockoutOf(t, f, email)
	assert.Equal(t, 1, lo.failures, "only the wrong password counts, not the refused right one")

	changed, _, err = f.svc.Disable(bg, info.ID, "")
	require.NoError(t, err)
	assert.False(t, changed, "disabling twice changes nothing")

	changed, err = f.svc.Enable(bg, info.ID)
	require.NoError(t, err)
	assert.True(t, changed)
	loginAs(t, f, email, "ua")
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p.Refresh}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")

	_, _, err = f.svc.Disable(bg, uuid.New(), "")
	assert.Equal(t, autherr.NotFound, autherr.CodeOf(err))
}

// TestRequireRecentAuth: the actions api.md marks "recent" need a session
// signed in within 10 minutes; refreshing does not make a session recent.
func TestRequireRecentAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	const email = "recent@example.com"
	sessSeedUsers(t, f, fastParams, sessPassword, email)
	p := loginAs(t, f, email, "ua")
	uid, sid := claimsOf(t, f, p.Access)
	require.NoError(t, f.svc.RequireRecentAuth(bg, uid, sid, 0))
	f.clock.Advance(manaauth.ReauthWithin + time.Second)
	st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	err := f.svc.RequireRecentAuth(bg, uid, sid, 0)
	assert.Equal(t, autherr.ReauthRequired, autherr.CodeOf(err), "a refresh is not a sign-in")
	assert.Equal(t, autherr.TokenInvalid, autherr.CodeOf(f.svc.RequireRecentAuth(bg, uuid.New(), sid, 0)), "not the user's session")
}

func claimsOf(t testing.TB, f *fixture, access string) (userID, sessionID uuid.UUID) {
	t.Helper()
	c, err := f.tokens.Verify(access)
	require.NoError(t, err)
	userID, err = c.UserID()
	require.NoError(t, err)
	sessionID, err = uuid.Parse(c.SessionID)
	require.NoError(t, err)
	return userID, sessionID
}

// TestStartSessionForOtherCredentials: a sign-in another package verified
// (a passkey here) is a login like any other — a session of that method,
// LOGIN_SUCCESS with the method and a login_attempts row, in one
// transaction with what the caller writes (InTx); a failing InTx leaves
// nothing behind; a disabled account is refused.
func TestStartSessionForOtherCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	const email = "other-credential@example.com"
	sessSeedUsers(t, f, fastParams, sessPassword, email)
	info, err := f.svc.UserByEmail(bg, email)
	require.NoError(t, err)
	begin := func() *lockout.Ticket {
		tk, err := f.gate.Begin(bg, lockout.Attempt{Email: email, Method: lockout.Passkey})
		require.NoError(t, err)
		return tk
	}

	boom := errors.New("sign count store failed")
	_, err = f.svc.StartSession(bg, manaauth.SignIn{UserID: info.ID, Method: lockout.Passkey, Ticket: begin(),
		InTx: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE auth.users SET name = 'written in the failed transaction' WHERE id = $1`, info.ID)
			require.NoError(t, err)
			return boom
		}})
	require.ErrorIs(t, err, boom)
	assert.Zero(t, f.ownerInt(t, `SELECT count(*) FROM auth.sessions WHERE user_id = $1`, info.ID))
	assert.Zero(t, f.ownerInt(t, `SELECT count(*) FROM auth.users WHERE name IS NOT NULL AND id = $1`, info.ID), "InTx rolled back")
	assert.Zero(t, sessLockoutOf(t, f, email).failures, "a failure that is not a credential failure takes the admission back")

	p, err := f.svc.StartSession(bg, manaauth.SignIn{UserID: info.ID, Method: lockout.Passkey, Ticket: begin(),
		Client: manaauth.Client{UserAgent: "authenticator/1"}})
	require.NoError(t, err)
	require.NotEmpty(t, p.AccessToken)
	require.NotEmpty(t, p.SessionCookie)
	list := sessionsOf(t, f, p.AccessToken)
	require.Len(t, list, 1)
	assert.Equal(t, "passkey", list[0]["method"])
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'LOGIN_SUCCESS'
		AND user_id = $1 AND metadata->>'method' = 'passkey'`, info.ID))
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.login_attempts WHERE email = $1 AND method = 'passkey' AND successful`, email))

	_, _, err = f.svc.Disable(bg, info.ID, "")
	require.NoError(t, err)
	_, err = f.svc.StartSession(bg, manaauth.SignIn{UserID: info.ID, Method: lockout.Passkey, Ticket: begin()})
	assert.Equal(t, autherr.AccountDisabled, autherr.CodeOf(err))
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.sessions WHERE user_id = $1`, info.ID), "no new session")
}

// secondFactor is a SecondFactor that asks every user for a code.
type secondFactor struct{ asked int }

func (s *secondFactor) Challenge(_ context.Context, _ uuid.UUID, _ lockout.Method, _ manaauth.Client) (*manaauth.MFAChallenge, error) {
	s.asked++
	return &manaauth.MFAChallenge{Token: "mfa-token-from-the-second-factor", Methods: []string{"totp", "recovery"}}, nil
}

// TestLoginWithSecondFactorGivesNoTokens: with an active second factor
// the right password answers the challenge — no tokens, no cookie, no
// session — and records MFA_REQUIRED, not LOGIN_SUCCESS. If Login started
// the session before asking, the session count below would be 1.
func TestLoginWithSecondFactorGivesNoTokens(t *testing.T) {
	t.Parallel()
	sf := &secondFactor{}
	f := wrap(authtest.New(t, authtest.Options{SecondFactor: sf}))
	const email = "two-step@example.com"
	sessSeedUsers(t, f, fastParams, sessPassword, email)
	st, body, resp := f.call(t, "POST", "/login", map[string]any{"email": email, "password": sessPassword}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, map[string]any{"mfaRequired": true, "mfaToken": "mfa-token-from-the-second-factor",
		"methods": []any{"totp", "recovery"}}, body)
	assert.Empty(t, resp.Cookies())
	assert.Equal(t, 1, sf.asked)
	assert.Zero(t, f.ownerInt(t, `SELECT count(*) FROM auth.sessions`))
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'MFA_REQUIRED'`))
	assert.Zero(t, f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'LOGIN_SUCCESS'`))

	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": email, "password": "not the password"}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	assert.Equal(t, 1, sf.asked, "a wrong password never reaches the second factor")
}

// TestLiveCheckDuringAnOutageIsUnavailable: when the database cannot be
// reached the live-session check answers 503, never 401 — an outage is
// not the user's fault and must not sign them out. If SessionActive read
// an error as "not live", the answer would be 401 TOKEN_INVALID.
func TestLiveCheckDuringAnOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	f, proxy := newProxiedFixture(t, fixtureOptions{})
	const email = "outage-live@example.com"
	sessSeedUsers(t, f, fastParams, sessPassword, email)
	p := loginAs(t, f, email, "ua")
	proxy.Cut()
	f.clock.Advance(manaauthLiveTTL) // past anything cached
	st, body, resp := f.call(t, "GET", "/sessions", nil, sessBearer(p.Access))
	requireError(t, st, body, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
}
