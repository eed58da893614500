package manaauth_test

// Helpers of the login, session, incident, enumeration, fuzz and benchmark
// tests. Their names start with "sess" so they cannot collide with helpers
// of the other test files of this package.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/mailtest"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/password"
)

// sessDefaultParams are the production argon2id parameters (design.md:
// the OWASP-equivalent m=19 MiB, t=2, p=1). fixtureOptions{} means the
// harness's cheap parameters, so tests about the real cost pass these.
var sessDefaultParams = password.Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// sessPassword passes the password policy (long, not common, unrelated to
// the test addresses).
const sessPassword = "correct horse battery staple"

// sessPair is what a successful login (or refresh) answered.
type sessPair struct {
	Access, Refresh string
	Cookie          *http.Cookie // nil when the answer set none
	Body            map[string]any
}

// sessRegister registers email through POST /register and returns the user
// id. With a fixture that does not require verification the register answer
// also starts a session; tests that count sessions account for it.
func sessRegister(t testing.TB, f *fixture, email, password string) string {
	t.Helper()
	st, body, _ := f.call(t, "POST", "/register", map[string]any{"email": email, "password": password}, nil)
	require.Equal(t, http.StatusCreated, st, "register %q: %v", email, body)
	u, _ := body["user"].(map[string]any)
	id, _ := u["id"].(string)
	require.NotEmpty(t, id, "register %q: %v", email, body)
	return id
}

// sessRegisterVerified registers email and redeems the verification link
// mailed to it, the way a real user does.
func sessRegisterVerified(t testing.TB, f *fixture, email, password string) string {
	t.Helper()
	id := sessRegister(t, f, email, password)
	m := f.smtp.WaitFor(t, strings.ToLower(strings.TrimSpace(email)), 10*time.Second)
	tok := mailtest.TokenFromText(t, m.Text, "verify-email")
	st, body, _ := f.call(t, "POST", "/verify-email", map[string]any{"token": tok}, nil)
	require.Equal(t, http.StatusOK, st, "verify %q: %v", email, body)
	return id
}

// sessLogin logs in and requires 200.
func sessLogin(t testing.TB, f *fixture, email, password string) sessPair {
	t.Helper()
	st, body, resp := f.call(t, "POST", "/login", map[string]any{"email": email, "password": password}, nil)
	require.Equal(t, http.StatusOK, st, "login %q: %v", email, body)
	p := sessPairOf(t, body)
	for _, c := range resp.Cookies() {
		if c.Name == manaauth.SessionCookie {
			p.Cookie = c
		}
	}
	return p
}

// sessPairOf reads a token pair answer.
func sessPairOf(t testing.TB, body map[string]any) sessPair {
	t.Helper()
	access, _ := body["accessToken"].(string)
	refresh, _ := body["refreshToken"].(string)
	require.NotEmpty(t, access, "no accessToken in %v", body)
	require.NotEmpty(t, refresh, "no refreshToken in %v", body)
	return sessPair{Access: access, Refresh: refresh, Body: body}
}

// sessBearer is the Authorization header of an access token.
func sessBearer(access string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + access}
}

// sessCookieHeader sends the session cookie (the fixture's client keeps no
// cookie jar) with its CSRF token, as the hosted pages do.
func sessCookieHeader(f *fixture, c *http.Cookie) map[string]string {
	return map[string]string{"Cookie": c.Name + "=" + c.Value, manaauth.CSRFHeader: f.svc.CSRFToken(c.Value)}
}

// sessDo sends a request with a raw body and answers without require, so it
// may run in goroutines; ct "" sends no Content-Type. The body is decoded
// when it is JSON.
func sessDo(f *fixture, method, path, ct string, body io.Reader, hdr map[string]string) (int, map[string]any, *http.Response, error) {
	req, err := http.NewRequest(method, f.srv.URL+"/api/v1/auth"+path, body)
	if err != nil {
		return 0, nil, nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return resp.StatusCode, nil, resp, fmt.Errorf("%s %s answered %d with a body that is not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out, resp, nil
}

// sessRaw is sessDo for the test goroutine.
func sessRaw(t testing.TB, f *fixture, method, path, ct string, body io.Reader, hdr map[string]string) (int, map[string]any, *http.Response) {
	t.Helper()
	st, out, resp, err := sessDo(f, method, path, ct, body, hdr)
	require.NoError(t, err)
	return st, out, resp
}

// sessInt runs a counting query as the owner (who sees every row).
func sessInt(t testing.TB, f *fixture, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.Owner.QueryRow(context.Background(), sql, args...).Scan(&n), "%s", sql)
	return n
}

// sessLockout is the lockout row of a canonical email: the failures counted
// in it and whether it is locked at the fixture's now. exists is false when
// the gate never saw the address.
type sessLockout struct {
	exists   bool
	failures int
	locked   bool
}

func sessLockoutOf(t testing.TB, f *fixture, email string) sessLockout {
	t.Helper()
	var l sessLockout
	err := f.db.Owner.QueryRow(context.Background(),
		`SELECT cardinality(failures), coalesce(locked_until > $2, false) FROM auth.lockouts WHERE email = $1`,
		email, f.clock.Now()).Scan(&l.failures, &l.locked)
	if errors.Is(err, pgx.ErrNoRows) {
		return l
	}
	require.NoError(t, err)
	l.exists = true
	return l
}

// sessAttempts counts auth.login_attempts rows of a canonical email.
func sessAttempts(t testing.TB, f *fixture, email string) (total, successful int) {
	t.Helper()
	require.NoError(t, f.db.Owner.QueryRow(context.Background(),
		`SELECT count(*), count(*) FILTER (WHERE successful) FROM auth.login_attempts WHERE email = $1`, email).
		Scan(&total, &successful))
	return total, successful
}

// sessSeedUsers inserts verified users with password as the owner, hashed
// once with params (the same hash string for every row: cheap to seed, and
// each login still verifies it in full). The fixture must run with the same
// params, or the first login of each user would rehash.
func sessSeedUsers(t testing.TB, f *fixture, params password.Params, pw string, emails ...string) {
	t.Helper()
	h, err := password.NewHasher(password.HasherConfig{Params: params})
	require.NoError(t, err)
	phc, err := h.Hash(context.Background(), pw)
	require.NoError(t, err)
	for _, e := range emails {
		_, err := f.db.Owner.Exec(context.Background(), `INSERT INTO auth.users (email, password_hash, email_verified_at, created_at, updated_at)
			VALUES ($1, $2, $3, $3, $3)`, e, phc, f.clock.Now())
		require.NoError(t, err, "seed %s", e)
	}
}

// sessSHA256 is what the database stores of a token.
func sessSHA256(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// newProxiedFixture is newFixture whose pool (runtime role) goes through a
// TCP proxy the test owns, so the test can cut the database away without
// stopping the server other tests use. The checks read the same database
// as the owner (f.db.Owner), not through the proxy.
func newProxiedFixture(t testing.TB, o fixtureOptions) (*fixture, *testutil.Proxy) {
	t.Helper()
	db := testutil.DB(t)
	proxy := testutil.NewProxy(t, testutil.ServerAddr(t))
	o.db, o.pool = db, testutil.OpenPool(t, proxy.URL(db.RuntimeURL))
	return newFixture(t, o), proxy
}
