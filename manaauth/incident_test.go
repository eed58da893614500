package manaauth_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The incident this project answers (design.md): a schema-drift column made
// every auth query fail, the login wrapper turned that error into
// "401 invalid credentials" and bumped the lockout counter. These tests
// replay it and the same failure with the database unreachable.
//
// What mapping the database error to 401 INVALID_CREDENTIALS would do:
// INVALID_CREDENTIALS is the one code that counts toward the lockout
// (autherr.CountsTowardLockout), so the gate would keep each failed
// admission; every real user who tried to log in during the outage would
// get "wrong password" for their right password, and at the 5th try within
// 15 minutes their account would lock for 30 minutes — once the schema is
// fixed (or the database back), the right password would still answer 429
// ACCOUNT_LOCKED, for every user who retried, and auth.login_attempts would
// hold a "failed" row for each try, blaming the users in the audit trail.
// The checks below fail then: 401 instead of 503, rows in login_attempts,
// failures counted in auth.lockouts, 429 after the repair.

// TestIncidentSchemaDriftIsNotBlamedOnTheUser renames auth.users.email (as
// the owner, in this test's own database): /login answers 503
// SERVICE_UNAVAILABLE for the right and for a wrong password, records no
// attempt and counts no failure, ten times over; renamed back, the right
// password logs in and the account is not locked. The last part is the
// negative control: real wrong passwords on the repaired schema do land in
// the same tables the test read, and do lock — so the zero counts above
// are not a blind spot of the queries.
func TestIncidentSchemaDriftIsNotBlamedOnTheUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	const email = "incident@example.com"
	sessRegisterVerified(t, f, email, sessPassword)
	sessLogin(t, f, email, sessPassword) // the account works before the drift
	total0, ok0 := sessAttempts(t, f, email)
	require.Equal(t, 1, total0)
	require.Equal(t, 1, ok0)

	_, err := f.db.Owner.Exec(bg, `ALTER TABLE auth.users RENAME COLUMN email TO email_address`)
	require.NoError(t, err)

	for i := range 10 {
		for _, pw := range []string{sessPassword, "not the password"} {
			st, body, resp := f.call(t, "POST", "/login", map[string]any{"email": email, "password": pw}, nil)
			require.Equal(t, http.StatusServiceUnavailable, st, "try %d, password %q: %v", i, pw, body)
			assert.Equal(t, "SERVICE_UNAVAILABLE", errCode(body))
			assert.Empty(t, resp.Cookies())
		}
	}
	total, ok := sessAttempts(t, f, email)
	assert.Equal(t, total0, total, "login attempts recorded during the drift")
	assert.Equal(t, ok0, ok)
	l := sessLockoutOf(t, f, email)
	assert.Zero(t, l.failures, "failures counted during the drift")
	assert.False(t, l.locked, "locked during the drift")
	assert.Zero(t, sessInt(t, f, `SELECT count(*) FROM auth.security_events WHERE event_type IN ('LOGIN_FAILURE', 'ACCOUNT_LOCKED')`))

	_, err = f.db.Owner.Exec(bg, `ALTER TABLE auth.users RENAME COLUMN email_address TO email`)
	require.NoError(t, err)
	sessLogin(t, f, email, sessPassword)
	l = sessLockoutOf(t, f, email)
	assert.Zero(t, l.failures)
	assert.False(t, l.locked)

	// Negative control: the same checks see real failures.
	for range 5 {
		st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": email, "password": "not the password"}, nil)
		require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	}
	total, _ = sessAttempts(t, f, email)
	assert.Equal(t, total0+1+5, total)
	assert.True(t, sessLockoutOf(t, f, email).locked)
	st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": email, "password": sessPassword}, nil)
	require.Equal(t, http.StatusTooManyRequests, st, "%v", body)
}

// TestIncidentDeadPoolIsNotBlamedOnTheUser is the same incident with the
// database unreachable: the fixture's pool goes through a TCP proxy this
// test owns; cut, /login answers 503 for right and wrong passwords and
// nothing is recorded (checked through the owner's direct connection);
// restored, the right password logs in and the account is not locked.
// Mapping the connection error to 401 would lock every user who retried
// during the outage, as described above.
func TestIncidentDeadPoolIsNotBlamedOnTheUser(t *testing.T) {
	t.Parallel()
	f, proxy := newProxiedFixture(t, fixtureOptions{requireVerification: true})
	const email = "outage@example.com"
	sessRegisterVerified(t, f, email, sessPassword)
	sessLogin(t, f, email, sessPassword)
	total0, _ := sessAttempts(t, f, email)
	require.Equal(t, 1, total0)

	proxy.Cut()
	for i := range 10 {
		for _, pw := range []string{sessPassword, "not the password"} {
			st, body, resp := f.call(t, "POST", "/login", map[string]any{"email": email, "password": pw}, nil)
			require.Equal(t, http.StatusServiceUnavailable, st, "try %d, password %q: %v", i, pw, body)
			assert.Equal(t, "SERVICE_UNAVAILABLE", errCode(body))
			assert.Empty(t, resp.Cookies())
		}
	}
	// The refresh path fails the same way, not as TOKEN_INVALID (which
	// would make clients throw their session away).
	st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": "bm90LWEtcmVhbC10b2tlbi1idXQtd2VsbC1mb3JtZWQ"}, nil)
	require.Equal(t, http.StatusServiceUnavailable, st, "%v", body)

	total, _ := sessAttempts(t, f, email)
	assert.Equal(t, total0, total, "login attempts recorded during the outage")
	l := sessLockoutOf(t, f, email)
	assert.Zero(t, l.failures, "failures counted during the outage")
	assert.False(t, l.locked)

	proxy.Restore()
	sessLogin(t, f, email, sessPassword)
	l = sessLockoutOf(t, f, email)
	assert.Zero(t, l.failures)
	assert.False(t, l.locked)
	total, ok := sessAttempts(t, f, email)
	assert.Equal(t, total0+1, total)
	assert.Equal(t, total0+1, ok)
}
