package manaauth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/mailtest"
	"github.com/mana-how/mana-auth/manaauth"
)

// Guards: the register contract when verification is required — a 201
// with the user and NO tokens (handing out tokens here would let an
// unverified address sign in), the verification mail with a link built
// from the configured base URL, the token stored for 24 h.
func TestRegisterRequiringVerificationAnswersUserOnlyAndMailsLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	st, body, resp := f.call(t, "POST", "/register", map[string]any{"email": " Alice@X.com ", "password": strongPassword, "name": "Alice"}, nil)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	u := userOf(t, body)
	_, err := uuid.Parse(u["id"].(string))
	require.NoError(t, err, "user id %v", u["id"])
	assert.Equal(t, "alice@x.com", u["email"], "email is stored canonical")
	assert.Equal(t, "Alice", u["name"])
	assert.Contains(t, u, "image")
	assert.Nil(t, u["image"])
	assert.Equal(t, false, u["emailVerified"])
	created, err := time.Parse(time.RFC3339, u["createdAt"].(string))
	require.NoError(t, err, "createdAt %v", u["createdAt"])
	assert.WithinDuration(t, f.clock.Now(), created, time.Second)
	for _, k := range []string{"accessToken", "refreshToken", "tokenType", "expiresIn"} {
		assert.NotContains(t, body, k, "no token pair while the address is unverified")
	}
	for _, c := range resp.Cookies() {
		assert.NotEqual(t, manaauth.SessionCookie, c.Name, "no session cookie while the address is unverified")
	}

	m := f.smtp.WaitFor(t, "alice@x.com", mailWait)
	tok := mailtest.TokenFromText(t, m.Text, "verify-email")
	assert.Contains(t, m.Text, "https://app.test.example/auth/verify-email?token="+tok)
	assert.Regexp(t, `^[A-Za-z0-9_-]{43}$`, tok, "a URL-safe token of 256 bits")

	var expires time.Time
	require.NoError(t, f.db.Owner.QueryRow(bg, `SELECT expires_at FROM auth.one_time_tokens WHERE user_id = $1 AND purpose = 'verify_email'`,
		u["id"]).Scan(&expires))
	assert.WithinDuration(t, f.clock.Now().Add(24*time.Hour), expires, time.Second, "verification links live 24 h")
}

// Guards: without required verification, register signs the user in —
// token pair, session cookie — and still mails the verification link.
// Breaking it (no pair, or a pair that does not work) leaves the new user
// stuck on the signup page.
func TestRegisterWithoutVerificationAlsoAnswersTokenPairAndCookie(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: false})
	st, body, resp := f.call(t, "POST", "/register", map[string]any{"email": "bob@x.com", "password": strongPassword}, nil)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	u := userOf(t, body)
	assert.Equal(t, "bob@x.com", u["email"])
	assert.Nil(t, u["name"])
	assert.Equal(t, "Bearer", body["tokenType"])
	assert.EqualValues(t, 900, body["expiresIn"])
	access, _ := body["accessToken"].(string)
	refresh, _ := body["refreshToken"].(string)
	require.NotEmpty(t, access)
	require.NotEmpty(t, refresh)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == manaauth.SessionCookie {
			cookie = c
		}
	}
	require.NotNil(t, cookie, "session cookie; got %v", resp.Cookies())
	assert.True(t, cookie.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, cookie.SameSite)
	assert.NotEmpty(t, cookie.Value)

	st, body, _ = f.call(t, "GET", "/profile", nil, bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, u["id"], userOf(t, body)["id"])
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)

	tok := f.mailToken(t, "bob@x.com", "verify-email")
	st, body, _ = f.call(t, "POST", "/verify-email", map[string]any{"token": tok}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, true, userOf(t, body)["emailVerified"])
}

// Guards: link poisoning. A link built from the request's Host (or the
// X-Forwarded-Host a client can send) would mail a victim a link to the
// attacker's host, which then receives the victim's token. The link must
// come from the configured base URL only.
func TestRegisterMailLinkIgnoresForgedHost(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	b, err := json.Marshal(map[string]any{"email": "carol@x.com", "password": strongPassword})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), "POST", f.srv.URL+"/api/v1/auth/register", bytes.NewReader(b))
	require.NoError(t, err)
	req.Host = "evil.example"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("Forwarded", "host=evil.example;proto=http")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", raw)

	m := f.smtp.WaitFor(t, "carol@x.com", mailWait)
	tok := mailtest.TokenFromText(t, m.Text, "verify-email")
	links := regexp.MustCompile(`https?://[^\s<>"']+`).FindAllString(m.Text, -1)
	require.Equal(t, []string{"https://app.test.example/auth/verify-email?token=" + tok}, links, "links in the text part")
	assert.NotContains(t, string(m.Data), "evil.example")
	assert.Contains(t, m.HTML, `href="https://app.test.example/auth/verify-email?token=`+tok+`"`)
}

// Guards: input validation before anything is stored. Each refused body
// names the bad field in details.fields; none of them may create a user
// (a half-validated signup would leave rows nobody can log in to).
func TestRegisterRefusesBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	long := strings.Repeat("n", 201)
	cases := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"missing email", map[string]any{"password": strongPassword}, "email"},
		{"blank email", map[string]any{"email": "   ", "password": strongPassword}, "email"},
		{"no at sign", map[string]any{"email": "alice.x.com", "password": strongPassword}, "email"},
		{"no domain dot", map[string]any{"email": "alice@localhost", "password": strongPassword}, "email"},
		{"two at signs", map[string]any{"email": "alice@@x.com", "password": strongPassword}, "email"},
		{"display name", map[string]any{"email": "Alice <alice@x.com>", "password": strongPassword}, "email"},
		{"header injection", map[string]any{"email": "alice@x.com\r\nBcc: all@x.com", "password": strongPassword}, "email"},
		{"too long email", map[string]any{"email": strings.Repeat("a", 250) + "@x.com", "password": strongPassword}, "email"},
		{"missing password", map[string]any{"email": "alice@x.com"}, "password"},
		{"name over 200", map[string]any{"email": "alice@x.com", "password": strongPassword, "name": long}, "name"},
		{"name with newline", map[string]any{"email": "alice@x.com", "password": strongPassword, "name": "Al\nice"}, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := f.call(t, "POST", "/register", tc.body, nil)
			requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
			assert.Contains(t, errFields(body), tc.field, "input %v: details.fields", tc.body)
		})
	}
	t.Run("malformed JSON", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), "POST", f.srv.URL+"/api/v1/auth/register", strings.NewReader(`{"email":`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.srv.Client().Do(req)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		require.NoError(t, resp.Body.Close())
		requireError(t, resp.StatusCode, body, http.StatusBadRequest, "BAD_REQUEST")
	})
	t.Run("name of exactly 200 is fine", func(t *testing.T) {
		st, body, _ := f.call(t, "POST", "/register", map[string]any{"email": "max@x.com", "password": strongPassword, "name": long[:200]}, nil)
		require.Equal(t, http.StatusCreated, st, "%v", body)
	})
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.users`), "only the valid signup created a user")
}

// Guards: the password policy on register (NIST 800-63B / ASVS): too short,
// in the common list (case-insensitively), or containing the address's
// local part → 400 WEAK_PASSWORD with details.reason, and no user. Without
// the check "password123" accounts fall to the first credential-stuffing
// run.
func TestRegisterRefusesWeakPasswords(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	cases := []struct {
		name, email, password, reason string
	}{
		{"seven code points", "alice@x.com", "abcdef7", "too_short"},
		{"short by code points though long in bytes", "alice@x.com", "ääääääá", "too_short"},
		{"common", "alice@x.com", "password123", "common"},
		{"common in capitals", "alice@x.com", "PassWord123", "common"},
		{"contains the local part", "alice@x.com", "alice-is-great-2024", "contains_email"},
		{"contains the local part in capitals", "Alice@X.com", "ALICE-is-great-2024", "contains_email"},
		{"contains the local part before its +tag", "alice+news@x.com", "my-alice-for-2024", "contains_email"},
		{"over 256 code points", "alice@x.com", strings.Repeat("x", 257), "too_long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := f.call(t, "POST", "/register", map[string]any{"email": tc.email, "password": tc.password}, nil)
			requireError(t, st, body, http.StatusBadRequest, "WEAK_PASSWORD")
			assert.Equal(t, tc.reason, errDetails(body)["reason"], "email %q password %q", tc.email, tc.password)
		})
	}
	assert.Equal(t, 0, f.ownerInt(t, `SELECT count(*) FROM auth.users`), "no refused password created a user")
	st, body, _ := f.call(t, "POST", "/register", map[string]any{"email": "alice@x.com", "password": "ääääääää"}, nil)
	require.Equal(t, http.StatusCreated, st, "eight code points are enough: %v", body)
}

// Guards: one account per address, case- and space-insensitively. If the
// address were not canonicalised, "Alice@X.com " would be a second account
// with its own password and its own lockout counter.
func TestRegisterTakenAddressIsConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	st, body, _ := f.call(t, "POST", "/register", map[string]any{"email": "alice@x.com", "password": strongPassword}, nil)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	for _, email := range []string{"alice@x.com", "Alice@X.com ", " ALICE@x.COM"} {
		st, body, _ = f.call(t, "POST", "/register", map[string]any{"email": email, "password": "another-secret-991"}, nil)
		requireError(t, st, body, http.StatusConflict, "EMAIL_ALREADY_REGISTERED")
	}
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.users`))
	f.settleMail(t)
	assert.Equal(t, 1, f.mailsTo("alice@x.com"), "a refused signup mails nothing")
}

func signupStatus(t testing.TB, f *fixture) map[string]any {
	t.Helper()
	st, body, _ := f.call(t, "GET", "/signup-status", nil, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	return body
}

// Guards: the daily signup cap and its status. The cap is counted in the
// database per UTC day; a refused signup (taken address) must not use up
// a slot (the counter is in the same transaction as the user row); the
// next day opens again. Breaking it either lets signups past the cap or
// closes signups early.
func TestSignupLimitAndStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true, maxDailySignups: 2})
	assert.Equal(t, map[string]any{"open": true, "limit": 2.0, "remainingToday": 2.0}, signupStatus(t, f))

	st, body, _ := f.call(t, "POST", "/register", map[string]any{"email": "one@x.com", "password": strongPassword}, nil)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	assert.Equal(t, map[string]any{"open": true, "limit": 2.0, "remainingToday": 1.0}, signupStatus(t, f))

	st, body, _ = f.call(t, "POST", "/register", map[string]any{"email": "ONE@x.com", "password": strongPassword}, nil)
	requireError(t, st, body, http.StatusConflict, "EMAIL_ALREADY_REGISTERED")
	st, body, _ = f.call(t, "POST", "/register", map[string]any{"email": "weak@x.com", "password": "password123"}, nil)
	requireError(t, st, body, http.StatusBadRequest, "WEAK_PASSWORD")
	assert.Equal(t, map[string]any{"open": true, "limit": 2.0, "remainingToday": 1.0}, signupStatus(t, f), "refused signups use no slot")

	st, body, _ = f.call(t, "POST", "/register", map[string]any{"email": "two@x.com", "password": strongPassword}, nil)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	assert.Equal(t, map[string]any{"open": false, "limit": 2.0, "remainingToday": 0.0}, signupStatus(t, f))

	st, body, _ = f.call(t, "POST", "/register", map[string]any{"email": "three@x.com", "password": strongPassword}, nil)
	requireError(t, st, body, http.StatusTooManyRequests, "SIGNUP_LIMIT_REACHED")
	assert.Equal(t, 0, f.ownerInt(t, `SELECT count(*) FROM auth.users WHERE email = 'three@x.com'`))
	assert.Equal(t, map[string]any{"open": false, "limit": 2.0, "remainingToday": 0.0}, signupStatus(t, f))

	f.clock.Advance(24 * time.Hour)
	assert.Equal(t, map[string]any{"open": true, "limit": 2.0, "remainingToday": 2.0}, signupStatus(t, f), "a new UTC day")
	st, body, _ = f.call(t, "POST", "/register", map[string]any{"email": "three@x.com", "password": strongPassword}, nil)
	require.Equal(t, http.StatusCreated, st, "%v", body)
}

// Guards: the unlimited status shape — limit and remainingToday present
// and null (api.md), not omitted and not 0 (a client reading 0 would show
// "signups closed").
func TestSignupStatusUnlimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	body := signupStatus(t, f)
	require.Equal(t, map[string]any{"open": true, "limit": nil, "remainingToday": nil}, body)
	st, rb, _ := f.call(t, "POST", "/register", map[string]any{"email": "one@x.com", "password": strongPassword}, nil)
	require.Equal(t, http.StatusCreated, st, "%v", rb)
	require.Equal(t, map[string]any{"open": true, "limit": nil, "remainingToday": nil}, signupStatus(t, f))
}

// Guards: the cap holds across instances and under concurrency. Two
// Services on one database take 10 parallel signups with a cap of 5:
// exactly 5 succeed. A cap counted in memory per instance would let 10
// through; a read-then-write count would let a race through.
func TestSignupLimitSharedByInstances(t *testing.T) {
	t.Parallel()
	const limit, tries = 5, 10
	a := newFixture(t, fixtureOptions{requireVerification: true, maxDailySignups: limit})
	b := a.peer(t, fixtureOptions{requireVerification: true, maxDailySignups: limit})

	type result struct {
		st   int
		code string
		err  error
	}
	results := make([]result, tries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range tries {
		inst := a
		if i%2 == 1 {
			inst = b
		}
		wg.Go(func() {
			<-start
			st, body, err := inst.try(t.Context(), "POST", "/register",
				map[string]any{"email": fmt.Sprintf("user%d@x.com", i), "password": strongPassword}, nil)
			results[i] = result{st, errCode(body), err}
		})
	}
	close(start)
	wg.Wait()

	created, limited := 0, 0
	for i, r := range results {
		require.NoError(t, r.err, "signup %d", i)
		switch {
		case r.st == http.StatusCreated:
			created++
		case r.st == http.StatusTooManyRequests && r.code == "SIGNUP_LIMIT_REACHED":
			limited++
		default:
			t.Errorf("signup %d: got %d %s, want 201 or 429 SIGNUP_LIMIT_REACHED", i, r.st, r.code)
		}
	}
	assert.Equal(t, limit, created, "created")
	assert.Equal(t, tries-limit, limited, "refused")
	assert.Equal(t, limit, a.ownerInt(t, `SELECT count(*) FROM auth.users`), "users in the database")
	want := map[string]any{"open": false, "limit": float64(limit), "remainingToday": 0.0}
	assert.Equal(t, want, signupStatus(t, a), "instance a")
	assert.Equal(t, want, signupStatus(t, b), "instance b")
}
