package manaauth_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// TestLoginSuccessShape guards the wire contract of a successful login
// (api.md): a client that reads accessToken/refreshToken/tokenType/
// expiresIn/user, or a browser that relies on the session cookie being
// HttpOnly (no script can read it), SameSite=Lax (not sent on cross-site
// POSTs) and Path=/ (sent to every route), breaks when a field is renamed,
// the TTL changes unnoticed or an attribute is dropped.
func TestLoginSuccessShape(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	id := sessRegister(t, f, "shape@example.com", sessPassword)

	st, body, resp := f.call(t, "POST", "/login", map[string]any{"email": "shape@example.com", "password": sessPassword}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.NotEmpty(t, body["accessToken"])
	assert.NotEmpty(t, body["refreshToken"])
	assert.Equal(t, "Bearer", body["tokenType"])
	exp, ok := body["expiresIn"].(float64)
	require.True(t, ok, "expiresIn %v (%T)", body["expiresIn"], body["expiresIn"])
	assert.InDelta(t, 900, exp, 2, "expiresIn")
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), "Content-Type %q", resp.Header.Get("Content-Type"))

	u, ok := body["user"].(map[string]any)
	require.True(t, ok, "user %v", body["user"])
	assert.Equal(t, id, u["id"])
	assert.Equal(t, "shape@example.com", u["email"])
	assert.Equal(t, false, u["emailVerified"]) // this fixture does not require verification
	for _, k := range []string{"name", "image"} {
		v, present := u[k]
		assert.True(t, present, "user.%s missing: %v", k, u)
		assert.Nil(t, v, "user.%s", k)
	}
	created, _ := u["createdAt"].(string)
	_, err := time.Parse(time.RFC3339, created)
	assert.NoError(t, err, "createdAt %q", created)
	assert.NotContains(t, body, "sessionCookie")
	assert.NotContains(t, u, "passwordHash")

	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == manaauth.SessionCookie {
			cookie = c
		}
	}
	require.NotNil(t, cookie, "no %s cookie in %v", manaauth.SessionCookie, resp.Header.Values("Set-Cookie"))
	assert.True(t, cookie.HttpOnly, "HttpOnly")
	assert.Equal(t, http.SameSiteLaxMode, cookie.SameSite, "SameSite")
	assert.Equal(t, "/", cookie.Path, "Path")
	assert.Positive(t, cookie.MaxAge, "MaxAge")
	raw, err := base64.RawURLEncoding.DecodeString(cookie.Value)
	require.NoError(t, err, "cookie value is URL-safe base64")
	assert.GreaterOrEqual(t, len(raw)*8, 128, "cookie entropy in bits")
	assert.NotEqual(t, body["refreshToken"], cookie.Value, "the cookie is not the refresh token")

	// The access token carries the session that was created.
	claims, err := f.tokens.Verify(body["accessToken"].(string))
	require.NoError(t, err)
	assert.Equal(t, id, claims.Subject)
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`,
		claims.SessionID, id))
}

// TestLoginErrors guards api.md's login error table: each failure answers
// with its exact status and code. Answering a malformed body as 500, a
// missing email as 401, or an unknown email differently from a wrong
// password (account enumeration) breaks a case here.
func TestLoginErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "known@example.com", sessPassword)
	big := `{"email":"known@example.com","password":"` + strings.Repeat("x", web.MaxBodyBytes) + `"}`

	cases := []struct {
		name       string
		ct         string
		body       func() io.Reader
		status     int
		code       string
		badField   string // details.fields names it
		sameAsBody bool   // the envelope must equal the wrong-password one but for requestId
	}{
		{name: "unknown email", body: func() io.Reader {
			return strings.NewReader(`{"email":"nobody@example.com","password":"whatever it is"}`)
		},
			status: 401, code: "INVALID_CREDENTIALS", sameAsBody: true},
		{name: "wrong password", body: func() io.Reader {
			return strings.NewReader(`{"email":"known@example.com","password":"not the password"}`)
		},
			status: 401, code: "INVALID_CREDENTIALS", sameAsBody: true},
		{name: "empty password", body: func() io.Reader { return strings.NewReader(`{"email":"known@example.com","password":""}`) },
			status: 401, code: "INVALID_CREDENTIALS", sameAsBody: true},
		{name: "absent password", body: func() io.Reader { return strings.NewReader(`{"email":"known@example.com"}`) },
			status: 401, code: "INVALID_CREDENTIALS", sameAsBody: true},
		{name: "missing email", body: func() io.Reader { return strings.NewReader(`{"password":"whatever it is"}`) },
			status: 400, code: "VALIDATION_FAILED", badField: "email"},
		{name: "blank email", body: func() io.Reader { return strings.NewReader(`{"email":"   ","password":"whatever it is"}`) },
			status: 400, code: "VALIDATION_FAILED", badField: "email"},
		{name: "malformed email", body: func() io.Reader { return strings.NewReader(`{"email":"not an address","password":"whatever it is"}`) },
			status: 400, code: "VALIDATION_FAILED", badField: "email"},
		{name: "malformed JSON", body: func() io.Reader { return strings.NewReader(`{"email":"known@example.com","password":`) },
			status: 400, code: "BAD_REQUEST"},
		{name: "wrong JSON type", body: func() io.Reader { return strings.NewReader(`{"email":["known@example.com"],"password":"x"}`) },
			status: 400, code: "BAD_REQUEST"},
		{name: "trailing data", body: func() io.Reader { return strings.NewReader(`{"email":"known@example.com","password":"x"} {}`) },
			status: 400, code: "BAD_REQUEST"},
		{name: "empty body", body: func() io.Reader { return strings.NewReader(``) },
			status: 400, code: "BAD_REQUEST"},
		{name: "not JSON content type", ct: "text/plain", body: func() io.Reader { return strings.NewReader(`{"email":"known@example.com","password":"x"}`) },
			status: 400, code: "BAD_REQUEST"},
		// Over 64 KiB, announced by Content-Length …
		{name: "body over 64 KiB", body: func() io.Reader { return strings.NewReader(big) },
			status: 413, code: "PAYLOAD_TOO_LARGE"},
		// … and streamed without it (chunked), so only the reader's limit can stop it.
		{name: "chunked body over 64 KiB", body: func() io.Reader { return struct{ io.Reader }{strings.NewReader(big)} },
			status: 413, code: "PAYLOAD_TOO_LARGE"},
	}
	var reference map[string]any
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := c.ct
			if ct == "" {
				ct = "application/json"
			}
			st, body, resp := sessRaw(t, f, "POST", "/login", ct, c.body(), nil)
			require.Equal(t, c.status, st, "%s: got %d %v, want %d", c.name, st, body, c.status)
			assert.Equal(t, c.code, errCode(body), "%s: %v", c.name, body)
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			if c.badField != "" {
				e, _ := body["error"].(map[string]any)
				d, _ := e["details"].(map[string]any)
				fields, _ := d["fields"].(map[string]any)
				assert.Contains(t, fields, c.badField, "%s: details %v", c.name, e["details"])
			}
			if c.sameAsBody {
				e := body["error"].(map[string]any)
				delete(e, "requestId")
				if reference == nil {
					reference = body
				}
				assert.Equal(t, reference, body, "%s answers differently from the other credential failures", c.name)
			}
		})
	}
	// None of the requests refused before the credential check was counted.
	assert.False(t, sessLockoutOf(t, f, "known@example.com").locked)
}

// TestLoginPasswordTooLong guards the rule that a password over the maximum
// (256 code points) is refused with VALIDATION_FAILED before any hashing:
// without it a client can make every login hash up to 64 KiB of input
// (argon2id's cost grows with it) and each such try counts toward the
// victim's lockout. The proof that nothing ran: the gate, which every
// credential check passes before hashing, saw nothing. The boundary cases
// guard counting code points, not bytes (NIST 800-63B).
func TestLoginPasswordTooLong(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "long@example.com", sessPassword)

	for _, pw := range []string{strings.Repeat("a", 257), strings.Repeat("é", 257), strings.Repeat("😀", 300), strings.Repeat("a", 60_000)} {
		st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": "long@example.com", "password": pw}, nil)
		require.Equal(t, http.StatusBadRequest, st, "%d code points: %v", len([]rune(pw)), body)
		assert.Equal(t, "VALIDATION_FAILED", errCode(body))
		d, _ := body["error"].(map[string]any)["details"].(map[string]any)
		assert.Contains(t, d["fields"], "password", "%v", d)
	}
	assert.Equal(t, sessLockout{}, sessLockoutOf(t, f, "long@example.com"), "the gate was entered")
	total, _ := sessAttempts(t, f, "long@example.com")
	assert.Zero(t, total, "login attempts recorded")

	// At the limit the password is checked (and wrong): 256 two-byte code
	// points are 512 bytes, still allowed.
	for _, pw := range []string{strings.Repeat("a", 256), strings.Repeat("é", 256)} {
		st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": "long@example.com", "password": pw}, nil)
		require.Equal(t, http.StatusUnauthorized, st, "%d code points: %v", len([]rune(pw)), body)
		assert.Equal(t, "INVALID_CREDENTIALS", errCode(body))
	}
	total, _ = sessAttempts(t, f, "long@example.com")
	assert.Equal(t, 2, total)
}

// TestLoginLocked guards the lockout on the login route: after 5 wrong
// passwords the account answers 429 ACCOUNT_LOCKED with remainingSeconds
// and Retry-After — also for the correct password (else the lock only
// slows an attacker down until they guess right) — and the lock ends
// after 30 minutes. Dropping Retry-After or remainingSeconds breaks
// clients that back off by them.
func TestLoginLocked(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "locked@example.com", sessPassword)
	for i := range 5 {
		st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": "locked@example.com", "password": "wrong password " + strconv.Itoa(i)}, nil)
		require.Equal(t, http.StatusUnauthorized, st, "failure %d: %v", i+1, body)
		require.Equal(t, "INVALID_CREDENTIALS", errCode(body))
	}
	for _, pw := range []string{sessPassword, "wrong again", ""} {
		st, body, resp := f.call(t, "POST", "/login", map[string]any{"email": "locked@example.com", "password": pw}, nil)
		require.Equal(t, http.StatusTooManyRequests, st, "password %q: %v", pw, body)
		assert.Equal(t, "ACCOUNT_LOCKED", errCode(body))
		rem, _ := body["error"].(map[string]any)["remainingSeconds"].(float64)
		assert.InDelta(t, 1800, rem, 1, "remainingSeconds")
		assert.Equal(t, strconv.Itoa(int(rem)), resp.Header.Get("Retry-After"))
		assert.Empty(t, resp.Cookies(), "a locked answer sets no cookie")
		assert.Nil(t, body["accessToken"])
	}
	// Failures while locked did not extend the lock.
	f.clock.Advance(30*time.Minute + time.Second)
	sessLogin(t, f, "locked@example.com", sessPassword)
}

// TestLoginEmailNotVerified guards that EMAIL_NOT_VERIFIED (403) is only
// answered after the password checked out: answering it first would tell
// anyone which unverified addresses have accounts, and let them probe
// without a lockout. A wrong password on an unverified account is the
// plain 401.
func TestLoginEmailNotVerified(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	sessRegister(t, f, "unverified@example.com", sessPassword)

	st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": "unverified@example.com", "password": "not the password"}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, "INVALID_CREDENTIALS", errCode(body))
	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": "unverified@example.com", "password": ""}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, "INVALID_CREDENTIALS", errCode(body))

	st, body, resp := f.call(t, "POST", "/login", map[string]any{"email": "unverified@example.com", "password": sessPassword}, nil)
	require.Equal(t, http.StatusForbidden, st, "%v", body)
	assert.Equal(t, "EMAIL_NOT_VERIFIED", errCode(body))
	assert.Empty(t, resp.Cookies())
	assert.Zero(t, sessInt(t, f, `SELECT count(*) FROM auth.sessions`), "a session was started for an unverified login")
}

// TestLoginCanonicalEmail guards email canonicalisation: "Alice@X.com " at
// signup and "alice@x.com" at login are one account and one lockout key.
// Keying the lockout on the raw input would let an attacker get 5 tries
// per spelling (unlimited guesses); matching the account on the raw input
// would lock the owner out of their own account.
func TestLoginCanonicalEmail(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	id := sessRegister(t, f, "Alice@X.com ", sessPassword)
	p := sessLogin(t, f, "alice@x.com", sessPassword)
	assert.Equal(t, id, p.Body["user"].(map[string]any)["id"])
	assert.Equal(t, "alice@x.com", p.Body["user"].(map[string]any)["email"])

	for _, spelling := range []string{"ALICE@X.COM", " alice@x.com", "Alice@X.com ", "alice@X.com", "aLiCe@x.CoM\t"} {
		st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": spelling, "password": "not the password"}, nil)
		require.Equal(t, http.StatusUnauthorized, st, "%q: %v", spelling, body)
	}
	st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": "alice@x.com", "password": sessPassword}, nil)
	require.Equal(t, http.StatusTooManyRequests, st, "five failures under five spellings did not lock: %v", body)
	assert.Equal(t, "ACCOUNT_LOCKED", errCode(body))

	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.lockouts`), "one lockout key")
	l := sessLockoutOf(t, f, "alice@x.com")
	assert.True(t, l.locked)
	assert.Equal(t, 0, sessInt(t, f, `SELECT count(*) FROM auth.login_attempts WHERE email <> 'alice@x.com'`), "attempts stored under a raw spelling")
}

// TestRefreshRotates guards rotation: a refresh spends the presented token
// (spent_at set in the database) and hands out a new one that works in
// turn, in the same session. Without rotation a stolen refresh token stays
// usable for the whole 30-day session.
func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	id := sessRegister(t, f, "rotate@example.com", sessPassword)
	p0 := sessLogin(t, f, "rotate@example.com", sessPassword)

	st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p0.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	p1 := sessPairOf(t, body)
	assert.NotEqual(t, p0.Refresh, p1.Refresh)
	assert.Equal(t, "Bearer", body["tokenType"])
	assert.InDelta(t, 900, body["expiresIn"], 2)
	assert.Equal(t, id, body["user"].(map[string]any)["id"])
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = $1 AND spent_at IS NOT NULL`, sessSHA256(p0.Refresh)),
		"the presented token is not spent")

	c0, err := f.tokens.Verify(p0.Access)
	require.NoError(t, err)
	c1, err := f.tokens.Verify(p1.Access)
	require.NoError(t, err)
	assert.Equal(t, c0.SessionID, c1.SessionID, "a refresh stays in its session")

	f.clock.Advance(time.Minute) // past the grace window of p0
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p1.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "the new token does not work: %v", body)
	p2 := sessPairOf(t, body)
	assert.NotEqual(t, p1.Refresh, p2.Refresh)
	assert.NotEqual(t, p0.Refresh, p2.Refresh)
}

// TestRefreshReuseAfterGrace guards reuse detection (OAuth 2.0 Security
// BCP, refresh token rotation): a spent token presented after the grace
// window means two parties hold the family — the attacker or the user — so
// the whole family is revoked (the child that was legitimately handed out
// fails too) and TOKEN_REUSE_DETECTED recorded once. Without it a thief
// who refreshes first keeps the session; recording on every later attempt
// would flood the audit log.
func TestRefreshReuseAfterGrace(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	id := sessRegister(t, f, "reuse@example.com", sessPassword)
	p0 := sessLogin(t, f, "reuse@example.com", sessPassword)
	st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p0.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	child := sessPairOf(t, body).Refresh

	f.clock.Advance(10*time.Second + time.Millisecond)
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p0.Refresh}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, "TOKEN_INVALID", errCode(body))

	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": child}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "the family survived the reuse: %v", body)
	assert.Equal(t, "TOKEN_INVALID", errCode(body))

	claims, err := f.tokens.Verify(p0.Access)
	require.NoError(t, err)
	var reason string
	require.NoError(t, f.db.Owner.QueryRow(bg, `SELECT revoke_reason FROM auth.sessions WHERE id = $1 AND revoked_at IS NOT NULL`,
		claims.SessionID).Scan(&reason))
	assert.Equal(t, "token_reuse", reason)

	// A second replay finds the family revoked and records nothing more.
	st, _, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p0.Refresh}, nil)
	require.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.security_events WHERE event_type = 'TOKEN_REUSE_DETECTED'`))
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.security_events WHERE event_type = 'TOKEN_REUSE_DETECTED'
		AND user_id = $1 AND metadata->>'sessionId' = $2`, id, claims.SessionID), "the event names the user and the session")
}

// TestRefreshRetryWithinGrace guards the grace window: a client that lost
// the answer to a refresh (a dropped connection) and retries with the
// spent token within 10 s receives the same child, and nothing is revoked.
// Treating that retry as reuse logs real users out on every flaky network;
// minting a second child would fork the family. Once the child itself was
// used, the spent token is a reuse even inside the window.
func TestRefreshRetryWithinGrace(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "grace@example.com", sessPassword)
	p0 := sessLogin(t, f, "grace@example.com", sessPassword)
	st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p0.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	child := sessPairOf(t, body).Refresh

	f.clock.Advance(10 * time.Second) // the edge of the window, still inside
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p0.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "a retry within the grace window was refused: %v", body)
	again := sessPairOf(t, body)
	assert.Equal(t, child, again.Refresh, "the retry got another child")
	_, err := f.tokens.Verify(again.Access)
	require.NoError(t, err)
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.refresh_tokens WHERE parent_id = (SELECT id FROM auth.refresh_tokens WHERE token_hash = $1)`,
		sessSHA256(p0.Refresh)), "children of the spent token")
	assert.Zero(t, sessInt(t, f, `SELECT count(*) FROM auth.security_events WHERE event_type = 'TOKEN_REUSE_DETECTED'`))

	// The child works; after that the spent parent is a reuse, even in the window.
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": child}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	grandchild := sessPairOf(t, body).Refresh
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p0.Refresh}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "the parent of a used child was honoured: %v", body)
	assert.Equal(t, "TOKEN_INVALID", errCode(body))
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": grandchild}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "the family survived the reuse: %v", body)
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.security_events WHERE event_type = 'TOKEN_REUSE_DETECTED'`))
}

// TestRefreshParallel guards rotation under concurrency (a browser with
// several tabs, a mobile client retrying): 50 refreshes of one token
// released together all answer 200 with the same child, and exactly one
// child row exists. A read-then-update rotation lets several spend the
// token (several children: a forked family) or answers the losers 5xx
// (unique violation) or TOKEN_INVALID (the user is logged out).
func TestRefreshParallel(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "parallel@example.com", sessPassword)
	p0 := sessLogin(t, f, "parallel@example.com", sessPassword)
	body, err := json.Marshal(map[string]any{"refreshToken": p0.Refresh})
	require.NoError(t, err)

	const n = 50
	type result struct {
		status  int
		refresh string
		access  string
		err     error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			st, out, _, err := sessDo(f, "POST", "/refresh", "application/json", bytes.NewReader(body), nil)
			r := result{status: st, err: err}
			r.refresh, _ = out["refreshToken"].(string)
			r.access, _ = out["accessToken"].(string)
			if st != http.StatusOK && err == nil {
				r.refresh = errCode(out)
			}
			results[i] = r
		})
	}
	close(start)
	wg.Wait()

	child := ""
	for i, r := range results {
		require.NoError(t, r.err, "request %d", i)
		require.Less(t, r.status, 500, "request %d answered %d %s", i, r.status, r.refresh)
		require.Equal(t, http.StatusOK, r.status, "request %d answered %d %s", i, r.status, r.refresh)
		if child == "" {
			child = r.refresh
		}
		assert.Equal(t, child, r.refresh, "request %d got another child", i)
		_, err := f.tokens.Verify(r.access)
		assert.NoError(t, err, "request %d", i)
	}
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.refresh_tokens WHERE parent_id = (SELECT id FROM auth.refresh_tokens WHERE token_hash = $1)`,
		sessSHA256(p0.Refresh)), "child rows")
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = $1`, sessSHA256(child)))
	assert.Zero(t, sessInt(t, f, `SELECT count(*) FROM auth.security_events WHERE event_type = 'TOKEN_REUSE_DETECTED'`))
	assert.Zero(t, sessInt(t, f, `SELECT count(*) FROM auth.sessions WHERE revoked_at IS NOT NULL`))

	st, out, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": child}, nil)
	require.Equal(t, http.StatusOK, st, "the child does not work: %v", out)
}

// TestRefreshErrors guards the refresh error answers: an expired session is
// TOKEN_EXPIRED (the client must log in again, not retry), an unknown or
// absurd token TOKEN_INVALID (never 500 or a DB error), a missing field
// VALIDATION_FAILED naming it.
func TestRefreshErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "rerr@example.com", sessPassword)
	p := sessLogin(t, f, "rerr@example.com", sessPassword)
	random := make([]byte, 32)
	_, err := rand.Read(random)
	require.NoError(t, err)

	cases := []struct {
		name   string
		body   map[string]any
		status int
		code   string
		field  string
	}{
		{"unknown token", map[string]any{"refreshToken": base64.RawURLEncoding.EncodeToString(random)}, 401, "TOKEN_INVALID", ""},
		{"over-long token", map[string]any{"refreshToken": strings.Repeat("A", 5000)}, 401, "TOKEN_INVALID", ""},
		{"not base64", map[string]any{"refreshToken": "\x00' OR 1=1 --"}, 401, "TOKEN_INVALID", ""},
		{"missing refreshToken", map[string]any{}, 400, "VALIDATION_FAILED", "refreshToken"},
		{"empty refreshToken", map[string]any{"refreshToken": ""}, 400, "VALIDATION_FAILED", "refreshToken"},
		{"wrong type", map[string]any{"refreshToken": 42}, 400, "BAD_REQUEST", ""},
		{"access token as refresh token", map[string]any{"refreshToken": p.Access}, 401, "TOKEN_INVALID", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body, _ := f.call(t, "POST", "/refresh", c.body, nil)
			require.Equal(t, c.status, st, "%s: %v", c.name, body)
			assert.Equal(t, c.code, errCode(body))
			if c.field != "" {
				d, _ := body["error"].(map[string]any)["details"].(map[string]any)
				assert.Contains(t, d["fields"], c.field, "%v", d)
			}
		})
	}

	t.Run("expired session", func(t *testing.T) {
		f.clock.Advance(30*24*time.Hour + time.Second)
		st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p.Refresh}, nil)
		require.Equal(t, http.StatusUnauthorized, st, "%v", body)
		assert.Equal(t, "TOKEN_EXPIRED", errCode(body))
		assert.Zero(t, sessInt(t, f, `SELECT count(*) FROM auth.security_events WHERE event_type = 'TOKEN_REUSE_DETECTED'`))
	})
}

// TestRefreshTokensStoredHashed guards token storage (design.md): refresh
// tokens and the session cookie are ≥ 128 random bits and the database
// holds only their SHA-256. Storing the plaintext turns any read of the
// table (a backup, a replica, an injection) into a session takeover.
func TestRefreshTokensStoredHashed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "stored@example.com", sessPassword)
	p := sessLogin(t, f, "stored@example.com", sessPassword)
	st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	child := sessPairOf(t, body).Refresh
	require.NotNil(t, p.Cookie)

	for name, tok := range map[string]string{"refresh": p.Refresh, "child": child, "cookie": p.Cookie.Value} {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		require.NoError(t, err, "%s token is URL-safe base64", name)
		assert.GreaterOrEqual(t, len(raw)*8, 128, "%s token bits", name)
	}
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = $1`, sessSHA256(p.Refresh)))
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = $1`, sessSHA256(child)))
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.sessions WHERE cookie_hash = $1`, sessSHA256(p.Cookie.Value)))

	// No column of any row holds a token in any form we can think of.
	rows, err := f.db.Owner.Query(bg, `SELECT row_to_json(x)::text FROM (
		SELECT to_jsonb(rt) AS r FROM auth.refresh_tokens rt UNION ALL SELECT to_jsonb(s) FROM auth.sessions s) x`)
	require.NoError(t, err)
	var dump []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		dump = append(dump, s)
	}
	require.NoError(t, rows.Err())
	// register (this fixture does not require verification) and login each
	// started a session with a refresh token; the login's was rotated once.
	require.Len(t, dump, 5, "3 refresh tokens and 2 sessions")
	for _, row := range dump {
		for _, tok := range []string{p.Refresh, child, p.Cookie.Value} {
			require.NotEmpty(t, tok)
			raw, _ := base64.RawURLEncoding.DecodeString(tok)
			assert.NotContains(t, row, tok)
			assert.NotContains(t, row, base64.StdEncoding.EncodeToString(raw))
			assert.NotContains(t, strings.ToLower(row), hex.EncodeToString(raw))
		}
	}
}

// TestLogoutBearer guards logout: the session and every refresh token of
// its family stop working, the cookie is cleared and dead, and other
// sessions of the same user stay. A logout that only deleted the
// presented refresh token would leave the rotated child (and the cookie)
// alive; one that revoked every session would log the user out on every
// device.
func TestLogoutBearer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "logout@example.com", sessPassword)
	p := sessLogin(t, f, "logout@example.com", sessPassword)
	other := sessLogin(t, f, "logout@example.com", sessPassword)
	st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	child := sessPairOf(t, body).Refresh

	st, body, resp := f.call(t, "POST", "/logout", nil, sessBearer(p.Access))
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	var cleared bool
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == manaauth.SessionCookie && c.MaxAge < 0)
	}
	assert.True(t, cleared, "the session cookie was not cleared: %v", resp.Header.Values("Set-Cookie"))

	for name, tok := range map[string]string{"first": p.Refresh, "rotated child": child} {
		st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": tok}, nil)
		require.Equal(t, http.StatusUnauthorized, st, "%s refresh token after logout: %v", name, body)
		assert.Equal(t, "TOKEN_INVALID", errCode(body))
	}
	st, body, _ = f.call(t, "POST", "/session-to-token", nil, sessCookieHeader(f, p.Cookie))
	require.Equal(t, http.StatusUnauthorized, st, "cookie after logout: %v", body)
	assert.Equal(t, "UNAUTHORIZED", errCode(body))
	claims, err := f.tokens.Verify(p.Access)
	require.NoError(t, err)
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.sessions WHERE id = $1 AND revoke_reason = 'logout'`, claims.SessionID))
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.security_events WHERE event_type = 'LOGOUT' AND metadata->>'sessionId' = $1`, claims.SessionID))

	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": other.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "logout revoked another session: %v", body)
}

// TestLogoutCookie guards logout from a browser, which holds only the
// session cookie: it must revoke the session like a Bearer logout, else
// "log out" on the web leaves the session alive.
func TestLogoutCookie(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "cookie-out@example.com", sessPassword)
	p := sessLogin(t, f, "cookie-out@example.com", sessPassword)
	require.NotNil(t, p.Cookie)

	st, body, _ := f.call(t, "POST", "/logout", nil, sessCookieHeader(f, p.Cookie))
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p.Refresh}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "refresh after cookie logout: %v", body)
	assert.Equal(t, "TOKEN_INVALID", errCode(body))
	st, body, _ = f.call(t, "POST", "/session-to-token", nil, sessCookieHeader(f, p.Cookie))
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, "UNAUTHORIZED", errCode(body))
	// A second logout with the dead cookie is refused, not a silent 204.
	st, body, _ = f.call(t, "POST", "/logout", nil, sessCookieHeader(f, p.Cookie))
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, "UNAUTHORIZED", errCode(body))
}

// TestLogoutUnauthenticated guards that logout needs a caller: without one
// it is 401 UNAUTHORIZED (not 204 doing nothing, not a 500 on a nil
// session), and a token that does not verify is TOKEN_INVALID.
func TestLogoutUnauthenticated(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	for _, c := range []struct {
		name string
		hdr  map[string]string
		code string
	}{
		{"no credentials", nil, "UNAUTHORIZED"},
		{"unknown cookie", map[string]string{"Cookie": manaauth.SessionCookie + "=bm90LWEtc2Vzc2lvbg"}, "UNAUTHORIZED"},
		{"basic auth", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, "UNAUTHORIZED"},
		{"bad bearer token", sessBearer("not.a.token"), "TOKEN_INVALID"},
	} {
		st, body, _ := f.call(t, "POST", "/logout", nil, c.hdr)
		require.Equal(t, http.StatusUnauthorized, st, "%s: %v", c.name, body)
		assert.Equal(t, c.code, errCode(body), c.name)
	}
}

// TestSessionToToken guards the cookie-to-token exchange: the login cookie
// gives a token pair in the same session (its refresh token works and
// dies with the session); no cookie or an unknown one is UNAUTHORIZED.
// Without the session check a logged-out cookie would mint fresh tokens.
func TestSessionToToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	id := sessRegister(t, f, "s2t@example.com", sessPassword)
	p := sessLogin(t, f, "s2t@example.com", sessPassword)
	require.NotNil(t, p.Cookie)

	st, body, _ := f.call(t, "POST", "/session-to-token", nil, sessCookieHeader(f, p.Cookie))
	require.Equal(t, http.StatusOK, st, "%v", body)
	q := sessPairOf(t, body)
	assert.Equal(t, "Bearer", body["tokenType"])
	assert.InDelta(t, 900, body["expiresIn"], 2)
	assert.Equal(t, id, body["user"].(map[string]any)["id"])
	c0, err := f.tokens.Verify(p.Access)
	require.NoError(t, err)
	c1, err := f.tokens.Verify(q.Access)
	require.NoError(t, err)
	assert.Equal(t, c0.SessionID, c1.SessionID, "the exchange stays in the cookie's session")
	assert.NotEqual(t, p.Refresh, q.Refresh)
	st, body, _ = f.call(t, "GET", "/profile", nil, sessBearer(q.Access))
	require.Equal(t, http.StatusOK, st, "%v", body)

	st, body, _ = f.call(t, "POST", "/session-to-token", nil, nil)
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, "UNAUTHORIZED", errCode(body))
	st, body, _ = f.call(t, "POST", "/session-to-token", nil, map[string]string{"Cookie": manaauth.SessionCookie + "=" + strings.Repeat("A", 43)})
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, "UNAUTHORIZED", errCode(body))

	st, body, _ = f.call(t, "POST", "/logout", nil, sessBearer(p.Access))
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	st, body, _ = f.call(t, "POST", "/session-to-token", nil, sessCookieHeader(f, p.Cookie))
	require.Equal(t, http.StatusUnauthorized, st, "cookie after logout: %v", body)
	assert.Equal(t, "UNAUTHORIZED", errCode(body))
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": q.Refresh}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "the exchanged refresh token outlived its session: %v", body)
}

// TestValidate guards POST /validate, which other services call: a good
// token answers {valid:true, claims:{sub,sid,email,…}}; expired and
// garbage tokens answer 401 {valid:false, error:{code}} with the right
// code. A 200 {valid:false} (which a careless caller reads as success) or
// claims in a failure breaks it.
func TestValidate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	id := sessRegister(t, f, "validate@example.com", sessPassword)
	p := sessLogin(t, f, "validate@example.com", sessPassword)

	st, body, _ := f.call(t, "POST", "/validate", map[string]any{"token": p.Access}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, true, body["valid"])
	claims, ok := body["claims"].(map[string]any)
	require.True(t, ok, "claims %v", body["claims"])
	assert.Equal(t, id, claims["sub"])
	assert.Equal(t, "validate@example.com", claims["email"])
	s, _ := claims["sid"].(string)
	_, err := uuid.Parse(s)
	require.NoError(t, err, "sid %q", s)
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.sessions WHERE id = $1 AND user_id = $2`, s, id))
	for _, k := range []string{"iss", "aud", "exp", "iat"} {
		assert.Contains(t, claims, k)
	}

	foreignKey, err := token.GenerateSigningKey(rand.Reader)
	require.NoError(t, err)
	foreign, err := token.New(token.Config{Issuer: "http://auth.test", Audience: "mana", Signing: foreignKey, Now: f.clock.Now})
	require.NoError(t, err)
	forged, _, err := foreign.Issue(uuid.MustParse(id), "validate@example.com", uuid.MustParse(s))
	require.NoError(t, err)

	for _, c := range []struct {
		name, token, code string
	}{
		{"garbage", "garbage", "TOKEN_INVALID"},
		{"three segments of junk", "a.b.c", "TOKEN_INVALID"},
		{"signed by another key", forged, "TOKEN_INVALID"},
		{"tampered signature", p.Access[:len(p.Access)-2] + flipB64(p.Access[len(p.Access)-2:]), "TOKEN_INVALID"},
	} {
		st, body, _ := f.call(t, "POST", "/validate", map[string]any{"token": c.token}, nil)
		require.Equal(t, http.StatusUnauthorized, st, "%s: %v", c.name, body)
		assert.Equal(t, false, body["valid"], c.name)
		assert.NotContains(t, body, "claims", c.name)
		e, _ := body["error"].(map[string]any)
		assert.Equal(t, c.code, e["code"], "%s: %v", c.name, body)
	}

	st, body, _ = f.call(t, "POST", "/validate", map[string]any{}, nil)
	require.Equal(t, http.StatusBadRequest, st, "%v", body)
	assert.Equal(t, "VALIDATION_FAILED", errCode(body))

	f.clock.Advance(16 * time.Minute)
	st, body, _ = f.call(t, "POST", "/validate", map[string]any{"token": p.Access}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, false, body["valid"])
	assert.NotContains(t, body, "claims")
	e, _ := body["error"].(map[string]any)
	assert.Equal(t, "TOKEN_EXPIRED", e["code"], "%v", body)
}

// flipB64 changes a base64url string to another one of the same length.
func flipB64(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// TestProfileRequiresBearer guards the JWT middleware on a protected route:
// no or non-Bearer credentials are 401 UNAUTHORIZED with a Bearer
// challenge, a token that does not verify TOKEN_INVALID, an expired one
// TOKEN_EXPIRED; only a good token reaches the handler. A middleware that
// passed requests without claims would serve another user's data or 500.
func TestProfileRequiresBearer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	id := sessRegister(t, f, "profile@example.com", sessPassword)
	p := sessLogin(t, f, "profile@example.com", sessPassword)

	for _, c := range []struct {
		name      string
		hdr       map[string]string
		code      string
		challenge string
	}{
		{"no header", nil, "UNAUTHORIZED", "Bearer"},
		{"basic", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, "UNAUTHORIZED", "Bearer"},
		{"bearer without token", map[string]string{"Authorization": "Bearer "}, "UNAUTHORIZED", "Bearer"},
		{"cookie only", sessCookieHeader(f, p.Cookie), "UNAUTHORIZED", "Bearer"},
		{"bad token", sessBearer("garbage"), "TOKEN_INVALID", `Bearer error="invalid_token"`},
		{"refresh token as bearer", sessBearer(p.Refresh), "TOKEN_INVALID", `Bearer error="invalid_token"`},
	} {
		st, body, resp := f.call(t, "GET", "/profile", nil, c.hdr)
		require.Equal(t, http.StatusUnauthorized, st, "%s: %v", c.name, body)
		assert.Equal(t, c.code, errCode(body), c.name)
		assert.Equal(t, c.challenge, resp.Header.Get("WWW-Authenticate"), c.name)
	}

	st, body, _ := f.call(t, "GET", "/profile", nil, sessBearer(p.Access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, id, body["user"].(map[string]any)["id"])

	f.clock.Advance(16 * time.Minute)
	st, body, _ = f.call(t, "GET", "/profile", nil, sessBearer(p.Access))
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, "TOKEN_EXPIRED", errCode(body))
}

// TestRefreshParallelReuse guards the audit trail of a replay burst: 50
// replays of a spent token after the grace window, released together, all
// fail with TOKEN_INVALID, revoke the family once and record
// TOKEN_REUSE_DETECTED once. Recording an event for every replay whose
// revocation found the family already revoked (by a concurrent replay)
// fills the user's security log with duplicates of one incident.
//
// To make the overlap certain rather than likely, the test holds the
// session's row lock (as the owner) until at least two replays wait on it,
// i.e. have both seen the family unrevoked; then it lets them go.
func TestRefreshParallelReuse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegister(t, f, "replay@example.com", sessPassword)
	p0 := sessLogin(t, f, "replay@example.com", sessPassword)
	st, body, _ := f.call(t, "POST", "/refresh", map[string]any{"refreshToken": p0.Refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	claims, err := f.tokens.Verify(p0.Access)
	require.NoError(t, err)
	f.clock.Advance(time.Minute)

	hold, err := f.db.Owner.Begin(bg)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := hold.Rollback(bg); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("release the session row lock: %v", err)
		}
	})
	_, err = hold.Exec(bg, `SELECT 1 FROM auth.sessions WHERE id = $1 FOR UPDATE`, claims.SessionID)
	require.NoError(t, err)

	const n = 50
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = f.svc.Refresh(bg, p0.Refresh, manaauth.Client{})
		})
	}
	close(start)
	require.Eventually(t, func() bool {
		return sessInt(t, f, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) >= 2
	}, 10*time.Second, 5*time.Millisecond, "the replays never waited on the session row")
	require.NoError(t, hold.Commit(bg))
	wg.Wait()

	for i, err := range errs {
		require.Error(t, err, "replay %d was honoured", i)
		assert.Equal(t, autherr.TokenInvalid, autherr.CodeOf(err), "replay %d: %v", i, err)
	}
	assert.Equal(t, 1, sessInt(t, f, `SELECT count(*) FROM auth.security_events WHERE event_type = 'TOKEN_REUSE_DETECTED'`),
		"one replay burst, one event")
}
