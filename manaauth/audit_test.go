package manaauth_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// auditEvent is one security event as a test compares it.
type auditEvent struct {
	Type, IP, UserAgent, Reason string
}

// auditEvents lists the events of a user, oldest first.
func auditEvents(t testing.TB, f *fixture, userID string) []auditEvent {
	t.Helper()
	rows, err := f.db.Owner.Query(bg, `SELECT event_type, coalesce(host(ip_address), ''), coalesce(user_agent, ''),
		coalesce(metadata->>'reason', '') FROM auth.security_events WHERE user_id = $1 ORDER BY id`, userID)
	require.NoError(t, err)
	defer rows.Close()
	var out []auditEvent
	for rows.Next() {
		var e auditEvent
		require.NoError(t, rows.Scan(&e.Type, &e.IP, &e.UserAgent, &e.Reason))
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

// Guards the audit truth of every login outcome, read back from
// auth.security_events, auth.login_attempts and the lock counter after
// each: a login refused with 403 EMAIL_NOT_VERIFIED is LOGIN_REFUSED with
// reason email_not_verified, an unsuccessful attempt, and leaves the
// counter as it was. (The earlier code recorded the success before the
// refusal: the refused login read LOGIN_SUCCESS and reset the counter, so
// this test saw LOGIN_SUCCESS first and failures 0 after the wrong
// password that preceded it.) EMAIL_VERIFIED carries IP and user agent.
func TestLoginOutcomesAreAuditedAsWhatHappened(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	const email = "audit@x.com"
	ua := map[string]string{"User-Agent": "audit-test/1"}
	st, body, _ := f.call(t, "POST", "/register", map[string]any{"email": email, "password": strongPassword}, ua)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	id := userOf(t, body)["id"].(string)
	verifyTok := f.mailToken(t, email, "verify-email")

	// A wrong password first: one counted failure.
	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": email, "password": "wrong-" + strongPassword}, ua)
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	assert.Equal(t, 1, sessLockoutOf(t, f, email).failures)

	// The right password before verification: refused, recorded as refused.
	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": email, "password": strongPassword}, ua)
	requireError(t, st, body, http.StatusForbidden, "EMAIL_NOT_VERIFIED")
	assert.Equal(t, []auditEvent{
		{Type: "REGISTER", IP: "127.0.0.1", UserAgent: "audit-test/1"},
		{Type: "LOGIN_FAILURE", IP: "127.0.0.1", UserAgent: "audit-test/1"},
		{Type: "LOGIN_REFUSED", IP: "127.0.0.1", UserAgent: "audit-test/1", Reason: "email_not_verified"},
	}, auditEvents(t, f, id))
	total, ok := sessAttempts(t, f, email)
	assert.Equal(t, 2, total)
	assert.Zero(t, ok, "a refused login is no successful attempt")
	assert.Equal(t, 1, sessLockoutOf(t, f, email).failures, "the refusal neither counts nor clears the earlier failure")

	st, body, _ = f.call(t, "POST", "/verify-email", map[string]any{"token": verifyTok}, ua)
	require.Equal(t, http.StatusOK, st, "%v", body)
	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": email, "password": strongPassword}, ua)
	require.Equal(t, http.StatusOK, st, "%v", body)
	events := auditEvents(t, f, id)
	require.Len(t, events, 5)
	assert.Equal(t, auditEvent{Type: "EMAIL_VERIFIED", IP: "127.0.0.1", UserAgent: "audit-test/1"}, events[3])
	assert.Equal(t, auditEvent{Type: "LOGIN_SUCCESS", IP: "127.0.0.1", UserAgent: "audit-test/1"}, events[4])
	total, ok = sessAttempts(t, f, email)
	assert.Equal(t, 3, total)
	assert.Equal(t, 1, ok)
	assert.Zero(t, sessLockoutOf(t, f, email).failures, "a success clears the counter")
}
