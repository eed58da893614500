package manaauth_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/mailtest"
)

// Guards: every password re-check passes the login's lockout gate. Five
// wrong passwords on change-email, change-password or delete-account lock
// the address exactly like five wrong logins — afterwards even the right
// password gets 429 ACCOUNT_LOCKED, on the endpoint and on /login. A
// re-check that bypassed the gate would hand anyone with a stolen access
// token an unlimited password oracle.
func TestPasswordRechecksCountTowardLockout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	cases := []struct {
		name, method, path string
		body               func(password string) map[string]any
	}{
		{"change-email", "POST", "/change-email", func(pw string) map[string]any {
			return map[string]any{"newEmail": "elsewhere@x.com", "password": pw}
		}},
		{"change-password", "POST", "/change-password", func(pw string) map[string]any {
			return map[string]any{"currentPassword": pw, "newPassword": "brand-new-secret-77"}
		}},
		{"delete-account", "DELETE", "/account", func(pw string) map[string]any {
			return map[string]any{"password": pw}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			email := tc.name + "@x.com"
			f.signUp(t, email, strongPassword)
			access, _ := f.login(t, email, strongPassword)
			for i := range 5 {
				st, body, _ := f.call(t, tc.method, tc.path, tc.body(fmt.Sprintf("wrong-guess-%d", i)), bearer(access))
				requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
			}
			st, body, resp := f.call(t, tc.method, tc.path, tc.body(strongPassword), bearer(access))
			requireError(t, st, body, http.StatusTooManyRequests, "ACCOUNT_LOCKED")
			assert.NotEmpty(t, resp.Header.Get("Retry-After"))
			assert.Equal(t, 6, f.ownerInt(t, `SELECT count(*) FROM auth.login_attempts WHERE email = $1 AND NOT successful`, email),
				"five failures and the refusal recorded as login attempts")
			st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": email, "password": strongPassword}, nil)
			requireError(t, st, body, http.StatusTooManyRequests, "ACCOUNT_LOCKED")
			assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.users WHERE email = $1`, email), "nothing changed")
		})
	}
	f.settleMail(t)
	assert.Zero(t, f.mailsTo("elsewhere@x.com"), "no change-email mail without the right password")
}

// Guards: change-email refusals — a taken address is 409 (two accounts on
// one address would share a lockout key and a reset mailbox), the current
// address is 400, bad or missing input is 400 naming the field, and no
// token is 401. None of them mails anything.
func TestChangeEmailRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	f.signUp(t, "bob@x.com", strongPassword)
	access, _ := f.login(t, "alice@x.com", strongPassword)

	st, body, _ := f.call(t, "POST", "/change-email", map[string]any{"newEmail": " BOB@x.com", "password": strongPassword}, bearer(access))
	requireError(t, st, body, http.StatusConflict, "EMAIL_ALREADY_REGISTERED")
	st, body, _ = f.call(t, "POST", "/change-email", map[string]any{"newEmail": "Alice@X.com", "password": strongPassword}, bearer(access))
	requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	assert.Contains(t, errFields(body), "newEmail")
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"password": strongPassword}, "newEmail"},
		{map[string]any{"newEmail": "not-an-address", "password": strongPassword}, "newEmail"},
		{map[string]any{"newEmail": "new@x.com"}, "password"},
	} {
		st, body, _ = f.call(t, "POST", "/change-email", tc.body, bearer(access))
		requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
		assert.Contains(t, errFields(body), tc.field, "input %v", tc.body)
	}
	st, body, _ = f.call(t, "POST", "/change-email", map[string]any{"newEmail": "new@x.com", "password": strongPassword}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "UNAUTHORIZED")

	f.settleMail(t)
	assert.Equal(t, 1, f.mailsTo("bob@x.com"), "bob got his signup mail only")
	assert.Zero(t, f.mailsTo("new@x.com"))
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.users WHERE email = 'alice@x.com'`))
}

// Guards: the address switches only when the link mailed to the NEW
// address is redeemed. Switching at request time would let a stolen
// session move the account to the thief's mailbox (and then reset the
// password) without ever proving control of it.
func TestChangeEmailSwitchesOnlyWhenConfirmed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	access, _ := f.login(t, "alice@x.com", strongPassword)

	st, body, _ := f.call(t, "POST", "/change-email", map[string]any{"newEmail": " New@X.com", "password": strongPassword}, bearer(access))
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	m := f.smtp.WaitFor(t, "new@x.com", mailWait)
	tok := mailtest.TokenFromText(t, m.Text, "confirm-email-change")
	assert.Contains(t, m.Text, "https://app.test.example/auth/confirm-email-change?token="+tok)

	st, body, _ = f.call(t, "GET", "/profile", nil, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "alice@x.com", userOf(t, body)["email"], "unchanged before confirmation")
	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": "new@x.com", "password": strongPassword}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	f.login(t, "alice@x.com", strongPassword)

	st, body = verify(t, f, tok)
	require.Equal(t, http.StatusOK, st, "%v", body)
	u := userOf(t, body)
	assert.Equal(t, "new@x.com", u["email"])
	assert.Equal(t, true, u["emailVerified"])

	st, body, _ = f.call(t, "GET", "/profile", nil, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "new@x.com", userOf(t, body)["email"])
	f.login(t, "NEW@x.com", strongPassword)
	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": "alice@x.com", "password": strongPassword}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")

	st, body = verify(t, f, tok)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
}

// Guards: an address taken between the request and the confirmation
// answers 409 EMAIL_ALREADY_REGISTERED on confirmation (the unique
// violation classified, not a 500) and the account keeps its address.
func TestChangeEmailConfirmationAfterAddressWasTaken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	access, _ := f.login(t, "alice@x.com", strongPassword)
	st, body, _ := f.call(t, "POST", "/change-email", map[string]any{"newEmail": "new@x.com", "password": strongPassword}, bearer(access))
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	tok := mailtest.TokenFromText(t, f.smtp.WaitFor(t, "new@x.com", mailWait).Text, "confirm-email-change")

	f.signUp(t, "new@x.com", "someone-elses-secret-5")
	st, body = verify(t, f, tok)
	requireError(t, st, body, http.StatusConflict, "EMAIL_ALREADY_REGISTERED")
	f.login(t, "alice@x.com", strongPassword)
	f.login(t, "new@x.com", "someone-elses-secret-5")
}

// Guards: change-password refusals. A refused new password (policy as on
// register) or missing field changes nothing: the current password still
// works.
func TestChangePasswordRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	access, _ := f.login(t, "alice@x.com", strongPassword)
	for _, tc := range []struct{ password, reason string }{
		{"short", "too_short"},
		{"password123", "common"},
		{"ALICE-is-great-2024", "contains_email"},
	} {
		st, body, _ := f.call(t, "POST", "/change-password", map[string]any{"currentPassword": strongPassword, "newPassword": tc.password}, bearer(access))
		requireError(t, st, body, http.StatusBadRequest, "WEAK_PASSWORD")
		assert.Equal(t, tc.reason, errDetails(body)["reason"], "new password %q", tc.password)
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"newPassword": "brand-new-secret-77"}, "currentPassword"},
		{map[string]any{"currentPassword": strongPassword}, "newPassword"},
	} {
		st, body, _ := f.call(t, "POST", "/change-password", tc.body, bearer(access))
		requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
		assert.Contains(t, errFields(body), tc.field, "input %v", tc.body)
	}
	st, body, _ := f.call(t, "POST", "/change-password", map[string]any{"currentPassword": strongPassword, "newPassword": "brand-new-secret-77"}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "UNAUTHORIZED")
	f.login(t, "alice@x.com", strongPassword)
}

// Guards: a password change revokes the OTHER sessions (someone who knew
// the old password is signed out everywhere) but keeps the caller's own:
// revoking it too would sign the user out of the page they changed it on;
// revoking none leaves the attacker in.
func TestChangePasswordRevokesOtherSessionsKeepsCurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	accessA, refreshA := f.login(t, "alice@x.com", strongPassword)
	_, refreshB := f.login(t, "alice@x.com", strongPassword)

	st, body, _ := f.call(t, "POST", "/change-password", map[string]any{"currentPassword": strongPassword, "newPassword": "brand-new-secret-77"}, bearer(accessA))
	require.Equal(t, http.StatusOK, st, "%v", body)

	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": refreshB}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": refreshA}, nil)
	require.Equal(t, http.StatusOK, st, "the current session survives: %v", body)

	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": "alice@x.com", "password": strongPassword}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	f.login(t, "alice@x.com", "brand-new-secret-77")
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'PASSWORD_CHANGED'`))
}

// Guards: profile read and update — the user shape of api.md, partial
// updates (an absent field stays, an empty one clears), and that the
// update is stored, not just echoed.
func TestProfileGetAndUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	id := f.signUp(t, "alice@x.com", strongPassword)
	access, _ := f.login(t, "alice@x.com", strongPassword)

	st, body, _ := f.call(t, "GET", "/profile", nil, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	u := userOf(t, body)
	assert.ElementsMatch(t, []string{"id", "email", "name", "image", "emailVerified", "createdAt"}, keys(u))
	assert.Equal(t, id, u["id"])
	assert.Equal(t, "alice@x.com", u["email"])
	assert.Equal(t, true, u["emailVerified"])

	st, body, _ = f.call(t, "POST", "/profile", map[string]any{"name": " Alice A. ", "image": "https://cdn.x.com/a.png"}, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	u = userOf(t, body)
	assert.Equal(t, "Alice A.", u["name"])
	assert.Equal(t, "https://cdn.x.com/a.png", u["image"])

	st, body, _ = f.call(t, "POST", "/profile", map[string]any{"name": ""}, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	st, body, _ = f.call(t, "GET", "/profile", nil, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	u = userOf(t, body)
	assert.Nil(t, u["name"], "an empty name clears it")
	assert.Equal(t, "https://cdn.x.com/a.png", u["image"], "an absent image stays")
}

// Guards: profile refusals. An image that is not an http(s) URL
// ("javascript:…" rendered into an <img>/<a> is XSS) or an over-long name
// is 400 naming the field and stores nothing; no or a bad token is 401.
func TestProfileRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	access, _ := f.login(t, "alice@x.com", strongPassword)
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"javascript image", map[string]any{"image": "javascript:alert(1)"}, "image"},
		{"data image", map[string]any{"image": "data:image/png;base64,AAAA"}, "image"},
		{"ftp image", map[string]any{"image": "ftp://x.com/a.png"}, "image"},
		{"not a URL", map[string]any{"image": "a picture of me"}, "image"},
		{"over-long image", map[string]any{"image": "https://x.com/" + strings.Repeat("a", 2048)}, "image"},
		{"name over 200", map[string]any{"name": strings.Repeat("n", 201)}, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := f.call(t, "POST", "/profile", tc.body, bearer(access))
			requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
			assert.Contains(t, errFields(body), tc.field, "input %v", tc.body)
		})
	}
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.users WHERE name IS NULL AND image IS NULL`), "nothing stored")

	for _, method := range []string{"GET", "POST"} {
		var in any
		if method == "POST" {
			in = map[string]any{"name": "Mallory"}
		}
		st, body, resp := f.call(t, method, "/profile", in, nil)
		requireError(t, st, body, http.StatusUnauthorized, "UNAUTHORIZED")
		assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
		st, body, _ = f.call(t, method, "/profile", in, bearer("not.a.jwt"))
		requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	}
	f.clock.Advance(16 * time.Minute)
	st, body, _ := f.call(t, "GET", "/profile", nil, bearer(access))
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_EXPIRED")
}

// Guards: account deletion (GDPR Art. 17). A wrong password changes
// nothing; the right one deletes the user and, by ON DELETE CASCADE, every
// session, refresh token, one-time token and security event of the user —
// and nothing of anyone else. A missing cascade leaves personal data (or
// fails the DELETE with a foreign-key 500); an over-eager one deletes
// other users' rows.
func TestDeleteAccountCascades(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	id := f.signUp(t, "alice@x.com", strongPassword)
	otherID := f.signUp(t, "bob@x.com", strongPassword)
	f.login(t, "bob@x.com", strongPassword)
	access, refresh := f.login(t, "alice@x.com", strongPassword)
	f.login(t, "alice@x.com", strongPassword)
	st, body, _ := f.call(t, "POST", "/forgot-password", map[string]any{"email": "alice@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	resetTok := f.mailToken(t, "alice@x.com", "reset-password")
	st, body, _ = f.call(t, "POST", "/change-email", map[string]any{"newEmail": "new@x.com", "password": strongPassword}, bearer(access))
	require.Equal(t, http.StatusAccepted, st, "%v", body)

	owned := func(userID string) map[string]int {
		return map[string]int{
			"users":           f.ownerInt(t, `SELECT count(*) FROM auth.users WHERE id = $1`, userID),
			"sessions":        f.ownerInt(t, `SELECT count(*) FROM auth.sessions WHERE user_id = $1`, userID),
			"refresh_tokens":  f.ownerInt(t, `SELECT count(*) FROM auth.refresh_tokens rt JOIN auth.sessions s ON s.id = rt.session_id WHERE s.user_id = $1`, userID),
			"one_time_tokens": f.ownerInt(t, `SELECT count(*) FROM auth.one_time_tokens WHERE user_id = $1`, userID),
			"security_events": f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE user_id = $1`, userID),
		}
	}
	before := owned(id)
	for table, n := range before {
		require.NotZero(t, n, "the test needs rows in auth.%s before the deletion", table)
	}
	refreshRows := f.ownerInt(t, `SELECT count(*) FROM auth.refresh_tokens`)
	otherBefore := owned(otherID)

	st, body, _ = f.call(t, "DELETE", "/account", map[string]any{"password": "wrong-guess-1"}, bearer(access))
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	st, body, _ = f.call(t, "DELETE", "/account", map[string]any{}, bearer(access))
	requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	assert.Contains(t, errFields(body), "password")
	st, body, _ = f.call(t, "DELETE", "/account", map[string]any{"password": strongPassword}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "UNAUTHORIZED")
	assert.Equal(t, 1, owned(id)["users"], "refused deletions delete nothing")

	st, body, _ = f.call(t, "DELETE", "/account", map[string]any{"password": strongPassword}, bearer(access))
	require.Equal(t, http.StatusNoContent, st, "%v", body)

	for table, n := range owned(id) {
		assert.Zero(t, n, "auth.%s rows of the deleted user", table)
	}
	assert.Equal(t, refreshRows-before["refresh_tokens"], f.ownerInt(t, `SELECT count(*) FROM auth.refresh_tokens`),
		"refresh tokens left in the table")
	assert.Equal(t, otherBefore, owned(otherID), "the other user's rows")
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'ACCOUNT_DELETED' AND user_id IS NULL`))

	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": "alice@x.com", "password": strongPassword}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": refresh}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": resetTok, "newPassword": "brand-new-secret-77"}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	f.login(t, "bob@x.com", strongPassword)
}

func eventIDs(t testing.TB, body map[string]any) []int64 {
	t.Helper()
	evs, ok := body["events"].([]any)
	require.True(t, ok, "no events array: %v", body)
	ids := make([]int64, 0, len(evs))
	for _, e := range evs {
		m := e.(map[string]any)
		ids = append(ids, int64(m["id"].(float64)))
	}
	return ids
}

// Guards: GET /security-events shows the caller's own events only (another
// user's logins never appear — a missing user filter leaks who logs in
// from where), newest first, and pages with ?limit and ?before=nextBefore
// without gaps or repeats; a bad limit or cursor is 400.
func TestSecurityEventsOwnNewestFirstPaginated(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	aliceID := f.signUp(t, "alice@x.com", strongPassword)
	bobID := f.signUp(t, "bob@x.com", strongPassword)
	access, _ := f.login(t, "alice@x.com", strongPassword)
	bobAccess, _ := f.login(t, "bob@x.com", strongPassword)
	st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": "alice@x.com", "password": "wrong-guess-1"}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	st, body, _ = f.call(t, "POST", "/profile", map[string]any{"name": "Bob"}, bearer(bobAccess))
	require.Equal(t, http.StatusOK, st, "%v", body)
	st, body, _ = f.call(t, "POST", "/profile", map[string]any{"name": "Alice"}, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)

	dbIDs := func(userID string) []int64 {
		rows, err := f.db.Owner.Query(bg, `SELECT id FROM auth.security_events WHERE user_id = $1 ORDER BY id DESC`, userID)
		require.NoError(t, err)
		var ids []int64
		for rows.Next() {
			var id int64
			require.NoError(t, rows.Scan(&id))
			ids = append(ids, id)
		}
		require.NoError(t, rows.Err())
		return ids
	}
	want := dbIDs(aliceID)
	require.GreaterOrEqual(t, len(want), 5, "the test needs several events of alice")
	bobs := dbIDs(bobID)
	require.NotEmpty(t, bobs)

	st, body, _ = f.call(t, "GET", "/security-events", nil, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	all := eventIDs(t, body)
	assert.Equal(t, want, all, "alice's events, newest first")
	for _, id := range bobs {
		assert.NotContains(t, all, id, "bob's event %d shown to alice", id)
	}
	assert.NotContains(t, body, "nextBefore", "one page holds everything")
	first := body["events"].([]any)[0].(map[string]any)
	assert.Equal(t, "PROFILE_UPDATED", first["type"])
	assert.Equal(t, "127.0.0.1", first["ipAddress"])
	_, err := time.Parse(time.RFC3339, first["createdAt"].(string))
	assert.NoError(t, err)
	var types []string
	for _, e := range body["events"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	assert.Subset(t, types, []string{"REGISTER", "EMAIL_VERIFIED", "LOGIN_SUCCESS", "LOGIN_FAILURE", "PROFILE_UPDATED"})

	var paged []int64
	path := "/security-events?limit=2"
	for pages := 0; ; pages++ {
		require.Less(t, pages, len(want), "pagination does not end")
		st, body, _ = f.call(t, "GET", path, nil, bearer(access))
		require.Equal(t, http.StatusOK, st, "%s: %v", path, body)
		ids := eventIDs(t, body)
		require.LessOrEqual(t, len(ids), 2, "%s", path)
		paged = append(paged, ids...)
		next, ok := body["nextBefore"].(float64)
		if !ok {
			break
		}
		require.Equal(t, ids[len(ids)-1], int64(next), "nextBefore is the last id of the page")
		path = fmt.Sprintf("/security-events?limit=2&before=%d", int64(next))
	}
	assert.Equal(t, want, paged, "pages joined")

	st, body, _ = f.call(t, "GET", "/security-events", nil, bearer(bobAccess))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, bobs, eventIDs(t, body), "bob sees his own")

	for _, q := range []string{"limit=0", "limit=101", "limit=-1", "limit=x", "limit=1.5"} {
		st, body, _ = f.call(t, "GET", "/security-events?"+q, nil, bearer(access))
		requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
		assert.Contains(t, errFields(body), "limit", "query %s", q)
	}
	for _, q := range []string{"before=x", "before=0", "before=-3"} {
		st, body, _ = f.call(t, "GET", "/security-events?"+q, nil, bearer(access))
		requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
		assert.Contains(t, errFields(body), "before", "query %s", q)
	}
	st, body, _ = f.call(t, "GET", "/security-events", nil, nil)
	requireError(t, st, body, http.StatusUnauthorized, "UNAUTHORIZED")
}

// Guards: the cursor is a bigserial id, so any positive int64 is a valid
// ?before — one past 2^31 (a busy table reaches it) must page from the
// newest, not fail. A parameter typed int4 answers 500 there.
func TestSecurityEventsCursorBeyondInt32(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	access, _ := f.login(t, "alice@x.com", strongPassword)
	st, body, _ := f.call(t, "GET", "/security-events", nil, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	want := eventIDs(t, body)
	require.NotEmpty(t, want)
	st, body, _ = f.call(t, "GET", "/security-events?before=3000000000", nil, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, want, eventIDs(t, body))
}

// Guards: the image must be an absolute http(s) URL with a host, not just
// a string that starts with "https://". "https://" alone, a host with
// spaces, or characters no URL holds unescaped (`"`, `<`, `>`) are refused:
// a client that puts the value into src="…" or href="…" would otherwise
// render a broken link or, with `"><script>`, markup the user chose.
func TestProfileImageMustBeAbsoluteURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	access, _ := f.login(t, "alice@x.com", strongPassword)
	for _, img := range []string{"https://", "http://", "https:// x y", "https:///a.png", `https://x.com/"><script>alert(1)</script>`} {
		st, body, _ := f.call(t, "POST", "/profile", map[string]any{"image": img}, bearer(access))
		if assert.Equal(t, http.StatusBadRequest, st, "image %q: %v", img, body) {
			assert.Equal(t, "VALIDATION_FAILED", errCode(body), "image %q", img)
			assert.Contains(t, errFields(body), "image", "image %q", img)
		}
	}
	for _, img := range []string{"https://cdn.x.com/a.png", "http://x.com:8080/p/a%20b.png?s=64"} {
		st, body, _ := f.call(t, "POST", "/profile", map[string]any{"image": img}, bearer(access))
		require.Equal(t, http.StatusOK, st, "image %q: %v", img, body)
		assert.Equal(t, img, userOf(t, body)["image"])
	}
}
