package mfa_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/manaauth"
)

// TestEnrollNeedsRecentSessionAndPassword: enrolment answers
// REAUTH_REQUIRED for a session older than 10 minutes (whatever the
// password), and INVALID_CREDENTIALS — counted at the gate — for a wrong
// password.
func TestEnrollNeedsRecentSessionAndPassword(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.signUp(t, "reauth@example.com")
	f.Clock.Advance(manaauth.ReauthWithin + time.Second)
	st, body, _ := f.Call(t, "POST", Prefix+"/totp/enroll", map[string]any{"password": password}, u.bearer())
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "REAUTH_REQUIRED")
	assert.EqualValues(t, 600, authtest.ErrDetails(body)["maxAgeSeconds"])
	assert.Zero(t, f.OwnerInt(t, `SELECT count(*) FROM auth.mfa_factors`), "nothing enrolled")

	u.access, u.refresh = f.Login(t, u.email, password) // a fresh sign-in
	st, body, _ = f.Call(t, "POST", Prefix+"/totp/enroll", map[string]any{"password": "not-the-password-1"}, u.bearer())
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	failures, _ := f.lockout(t, u.email)
	assert.Equal(t, 1, failures, "the re-check passes the gate")
	st, body, _ = f.Call(t, "POST", Prefix+"/totp/enroll", map[string]any{}, u.bearer())
	authtest.RequireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	assert.Contains(t, authtest.ErrFields(body), "password")
	st, body, _ = f.Call(t, "POST", Prefix+"/totp/enroll", map[string]any{"password": password}, nil)
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "UNAUTHORIZED")
	f.enroll(t, u)
}

// TestReEnrolment: enrolling again while pending replaces the pending
// secret (the old one no longer confirms); while active it is 409.
func TestReEnrolment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.signUp(t, "again@example.com")
	f.enroll(t, u)
	old := u.secret
	f.enroll(t, u)
	assert.NotEqual(t, old, u.secret)
	assert.Equal(t, 1, f.OwnerInt(t, `SELECT count(*) FROM auth.mfa_factors WHERE user_id = $1`, u.id))
	st, body, _ := f.Call(t, "POST", Prefix+"/totp/confirm", map[string]any{"code": rfc6238(old, f.Clock.Now())}, u.bearer())
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	failures, _ := f.lockout(t, u.email)
	assert.Zero(t, failures, "a wrong code at confirmation does not count toward the lock")
	f.confirm(t, u)

	st, body, _ = f.Call(t, "POST", Prefix+"/totp/enroll", map[string]any{"password": password}, u.bearer())
	authtest.RequireError(t, st, body, http.StatusConflict, "CONFLICT")
	st, body, _ = f.Call(t, "POST", Prefix+"/totp/confirm", map[string]any{"code": rfc6238(u.secret, f.Clock.Now())}, u.bearer())
	authtest.RequireError(t, st, body, http.StatusConflict, "CONFLICT")
	_, left := f.status(t, u)
	assert.Equal(t, 10, left, "a second confirm makes no new codes")
}

func TestConfirmWithoutEnrolment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.signUp(t, "none@example.com")
	st, body, _ := f.Call(t, "POST", Prefix+"/totp/confirm", map[string]any{"code": "123456"}, u.bearer())
	authtest.RequireError(t, st, body, http.StatusNotFound, "NOT_FOUND")
	st, body, _ = f.Call(t, "POST", Prefix+"/totp/confirm", map[string]any{"code": "12x456"}, u.bearer())
	authtest.RequireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	st, body, _ = f.Call(t, "DELETE", Prefix+"/totp", map[string]any{"code": "123456"}, u.bearer())
	authtest.RequireError(t, st, body, http.StatusNotFound, "NOT_FOUND")
}

// TestDisable: removal with a code and with a recovery code; afterwards
// the login asks for nothing, the codes are gone; events and notices.
func TestDisable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})

	u := f.enabled(t, "off1@example.com")
	del := func(u *user, proof map[string]any) (int, map[string]any) {
		st, body, _ := f.Call(t, "DELETE", Prefix+"/totp", proof, u.bearer())
		return st, body
	}
	st, body := del(u, code("000000"))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	// The confirmation's code was used: it cannot remove the factor.
	st, body = del(u, code(rfc6238(u.secret, f.Clock.Now().Add(-30*time.Second))))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	failures, _ := f.lockout(t, u.email)
	assert.Equal(t, 2, failures, "wrong codes at removal count toward the lock")
	st, body = del(u, map[string]any{})
	authtest.RequireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	st, body = del(u, map[string]any{"code": "123456", "recoveryCode": u.recovery[0]})
	authtest.RequireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")

	st, body = del(u, code(rfc6238(u.secret, f.Clock.Now())))
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	on, left := f.status(t, u)
	assert.False(t, on)
	assert.Zero(t, left)
	assert.Zero(t, f.OwnerInt(t, `SELECT count(*) FROM auth.mfa_recovery_codes WHERE user_id = $1`, u.id), "the codes went with the factor")
	assert.Contains(t, f.events(t, u), "MFA_DISABLED")
	f.waitMail(t, u.email, "Two-step sign-in is off")
	failures, _ = f.lockout(t, u.email)
	assert.Zero(t, failures, "the right code clears the failures")
	u.access, _ = f.Login(t, u.email, password) // no second step any more
	st, body = del(u, code(rfc6238(u.secret, f.Clock.Now())))
	authtest.RequireError(t, st, body, http.StatusNotFound, "NOT_FOUND")

	v := f.enabled(t, "off2@example.com")
	st, body = del(v, recovery(v.recovery[9]))
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	assert.Subset(t, f.events(t, v), []string{"MFA_RECOVERY_CODE_USED", "MFA_DISABLED"})
	on, _ = f.status(t, v)
	assert.False(t, on)

	w := f.enabled(t, "off3@example.com")
	st, body = del(w, recovery("ZZZZ-ZZZZ-ZZZZ"))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	f.Clock.Advance(manaauth.ReauthWithin)
	st, body = del(w, code(rfc6238(w.secret, f.Clock.Now())))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "REAUTH_REQUIRED")
	on, left = f.status(t, w)
	assert.True(t, on)
	assert.Equal(t, 10, left, "a wrong recovery code spends none")
}

// TestManagementNeedsALiveSession: the management routes refuse the
// access token of a revoked session at once (the handler's live-session
// check), while it still verifies.
func TestManagementNeedsALiveSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.signUp(t, "live@example.com")
	f.status(t, u)
	st, body, _ := f.Call(t, "POST", authtest.AuthPrefix+"/logout", nil, u.bearer())
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	f.Clock.Advance(5 * time.Second) // past the check's cache
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/status", nil},
		{"POST", "/totp/enroll", map[string]any{"password": password}},
		{"POST", "/totp/confirm", map[string]any{"code": "123456"}},
		{"DELETE", "/totp", map[string]any{"code": "123456"}},
	} {
		st, body, resp := f.Call(t, r.method, Prefix+r.path, r.body, u.bearer())
		authtest.RequireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
		assert.Equal(t, `Bearer error="invalid_token"`, resp.Header.Get("WWW-Authenticate"), r.path)
	}
}

// TestDisabledAccountCannotVerify: an account disabled between the
// password and the code answers 403 ACCOUNT_DISABLED even with the right
// code, and no session starts.
func TestDisabledAccountCannotVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "gone@example.com")
	tok := f.challenge(t, u)
	_, _, err := f.Auth.Disable(bg, uuidOf(t, u.id), "test")
	require.NoError(t, err)
	st, body, _ := f.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
	authtest.RequireError(t, st, body, http.StatusForbidden, "ACCOUNT_DISABLED")
	assert.Zero(t, f.OwnerInt(t, `SELECT count(*) FROM auth.sessions WHERE user_id = $1 AND revoked_at IS NULL`, u.id))
	failures, _ := f.lockout(t, u.email)
	assert.Zero(t, failures)
}

func uuidOf(t testing.TB, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	require.NoError(t, err)
	return id
}

// TestAccountDeletionTakesTheFactor: deleting the account removes its
// factor, recovery codes and challenges (the cascade passes row-level
// security).
func TestAccountDeletionTakesTheFactor(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "bye@example.com")
	f.challenge(t, u)
	st, body, _ := f.Call(t, "DELETE", authtest.AuthPrefix+"/account", map[string]any{"password": password}, u.bearer())
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	for _, table := range []string{"auth.mfa_factors", "auth.mfa_recovery_codes", "auth.mfa_challenges"} {
		assert.Zero(t, f.OwnerInt(t, `SELECT count(*) FROM `+table+` WHERE user_id = $1`, u.id), table)
	}
}
