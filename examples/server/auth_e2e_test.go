package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/internal/mailtest"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/password"
	"github.com/mana-how/mana-auth/token"
)

// The end-to-end test drives the reference server exactly as run mounts it
// (newServer, newAuthStack, mountAuth, behind s.Handler()) over real HTTP,
// with a real PostgreSQL and a real SMTP server, and validates every answer
// against openapi.yaml. Independent groups run in parallel, each on its own
// database, mail server and server; at the end every documented operation
// must have answered 2xx at least once.
//
// The server hashes with the default argon2id parameters, so the groups
// keep the password operations (register, login, password re-checks and
// changes) to about 60 in all; the comments count them where they happen.

const (
	e2eBaseURL = "http://auth.example.test"
	e2eFrom    = "auth@example.test"
	// Passwords that pass the policy (long, not common, not the address).
	e2ePass1 = "violet-harbor-lantern-58"
	e2ePass2 = "quiet-meadow-compass-73"
	e2ePass3 = "amber-glacier-pilot-19"
)

func authPath(p string) string { return authPrefix + p }

func TestAuthEndToEnd(t *testing.T) {
	t.Parallel()
	cov := newSpecCoverage(t)
	verifyOff := map[string]string{"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION": "false", "MAX_DAILY_SIGNUPS": "1"}
	groups := []struct {
		name  string
		setup e2eSetup
		run   func(t *testing.T, f *e2eServer)
	}{
		{"signup and verification", e2eSetup{}, e2eSignupAndVerification},
		{"sessions and tokens", e2eSetup{}, e2eSessionsAndTokens},
		{"session management", e2eSetup{}, e2eSessionManagement},
		{"two-step sign-in", e2eSetup{}, e2eMFA},
		{"account changes", e2eSetup{}, e2eAccountChanges},
		{"lockout", e2eSetup{}, e2eLockout},
		{"without email verification", e2eSetup{env: verifyOff}, e2eWithoutVerification},
		{"ip limit ignores X-Forwarded-For without trusted proxies",
			e2eSetup{env: map[string]string{"MANA_AUTH_IP_RATE": "3/min"}}, e2eIPLimitUntrusted},
		{"ip limit honours X-Forwarded-For from trusted proxies",
			e2eSetup{env: map[string]string{"MANA_AUTH_IP_RATE": "3/min", "MANA_AUTH_TRUSTED_PROXIES": "127.0.0.1/32"}}, e2eIPLimitTrusted},
		{"ip limit covers every limited route",
			e2eSetup{env: map[string]string{"MANA_AUTH_IP_RATE": "1/min", "MANA_AUTH_TRUSTED_PROXIES": "127.0.0.1/32"}}, e2eIPLimitRoutes},
		{"database outage", e2eSetup{env: map[string]string{"MAX_DAILY_SIGNUPS": "5"}, viaProxy: true, errorsLogged: true}, e2eDatabaseOutage},
		{"encryption vault", e2eSetup{}, e2eVault},
		// The routes whose statements hold session state (the vault's
		// row-level security setting) or run as batches and transactions
		// (login, refresh rotation), through a PgBouncer in transaction
		// mode with one server connection for the whole pool.
		{"encryption vault through PgBouncer", e2eSetup{viaBouncer: true}, e2eVault},
		{"sessions and tokens through PgBouncer", e2eSetup{viaBouncer: true}, e2eSessionsAndTokens},
		{"encryption vault faults", e2eSetup{viaProxy: true, errorsLogged: true}, e2eVaultFaults},
		{"mission key grants", e2eSetup{errorsLogged: true}, e2eGrants}, // unconfigured; starts a configured server too
		{"organizations", e2eSetup{}, e2eGuildsWalk},
		{"organization errors", e2eSetup{}, e2eGuildsErrors},
		{"api keys", e2eSetup{env: map[string]string{"MANA_AUTH_SERVICE_KEY": e2eServiceKey}}, e2eAPIKeys},
		{"data export and erasure", e2eSetup{env: map[string]string{"MANA_AUTH_SERVICE_KEY": e2eServiceKey}}, e2eData},
		{"passkeys", e2eSetup{env: map[string]string{"MANA_AUTH_BASE_URL": e2eSecureBaseURL}}, e2ePasskeys}, // starts a server without passkeys too
		{"the OpenAPI document", e2eSetup{}, e2eOpenAPIDocument},
		{"refresh grace from the environment", e2eSetup{env: map[string]string{"MANA_AUTH_REFRESH_GRACE": "2s"}, clock: authtest.NewClock()},
			e2eRefreshGrace},
		{"password hasher sheds a flood", e2eSetup{env: map[string]string{"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION": "false"}, errorsLogged: true,
			hasher: password.HasherConfig{Params: password.Params{Time: 6}, MaxConcurrent: 1, MaxQueue: -1}, admission: 100}, e2eHasherSheds},
		{"admission sheds a flood", e2eSetup{env: map[string]string{"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION": "false"},
			hasher: password.HasherConfig{Params: password.Params{Time: 6}, MaxConcurrent: 1, MaxQueue: -1}}, e2eAdmissionSheds},
		{"hosted pages", e2eSetup{}, e2ePages},
	}
	start := time.Now()
	t.Run("group", func(t *testing.T) {
		for _, g := range groups {
			t.Run(g.name, func(t *testing.T) {
				t.Parallel()
				cov.started(g.name)
				g.run(t, newE2EServer(t, cov, g.setup))
			})
		}
	})
	t.Logf("groups done in %v", time.Since(start).Round(time.Millisecond))
	switch {
	case t.Failed():
		t.Log("spec coverage not checked: a group failed")
	case cov.groups() != len(groups):
		t.Logf("spec coverage not checked: %d of %d groups ran (-run selected a subset)", cov.groups(), len(groups))
	default:
		cov.check(t)
	}
}

// e2eSignupAndVerification: the process routes, JWKS, signup status,
// register, verify-email, resend-verification, forgot-password for unknown
// addresses, login errors, and validate. 8 password operations.
func e2eSignupAndVerification(t *testing.T, f *e2eServer) {
	f.expect(200, "GET", "/healthz", nil)
	f.expect(200, "GET", "/readyz", nil)
	jwks := f.expect(200, "GET", "/.well-known/jwks.json", nil)
	assert.Equal(t, "public, max-age=300", jwks.header.Get("Cache-Control"))
	st := f.expect(200, "GET", authPath("/signup-status"), nil)
	assert.JSONEq(t, `{"open":true,"limit":null,"remainingToday":null}`, string(st.body))

	// Register: the errors that come before any hashing.
	reg := authPath("/register")
	f.expectCode(400, "BAD_REQUEST", "POST", reg, `{"email":`)
	f.expectCode(400, "BAD_REQUEST", "POST", reg, `{"email":"a@example.test","password":"`+e2ePass1+`"}`,
		withHeader("Content-Type", "text/plain"))
	e := f.expectCode(400, "VALIDATION_FAILED", "POST", reg, map[string]any{})
	assert.Equal(t, map[string]any{"email": "required", "password": "required"}, e.Details["fields"])
	e = f.expectCode(400, "VALIDATION_FAILED", "POST", reg, map[string]any{"email": "not an address", "password": e2ePass1})
	assert.Contains(t, e.Details["fields"], "email")
	e = f.expectCode(400, "WEAK_PASSWORD", "POST", reg, map[string]any{"email": "alice@example.test", "password": "short"})
	assert.Equal(t, "too_short", e.Details["reason"])

	// Register two accounts (2); the address is canonicalised, no session
	// is started while verification is required.
	r := f.expect(201, "POST", reg, map[string]any{"email": "  Alice@Example.TEST ", "password": e2ePass1, "name": "Alice"})
	assert.Nil(t, sessionCookie(r), "no session cookie before verification")
	alice := decodeJSON[e2eUserBody](t, r.body).User
	assert.Equal(t, "alice@example.test", alice.Email)
	require.NotNil(t, alice.Name)
	assert.Equal(t, "Alice", *alice.Name)
	assert.Nil(t, alice.Image)
	assert.False(t, alice.EmailVerified)
	assert.WithinDuration(t, time.Now(), alice.CreatedAt, time.Minute)
	f.register("bob@example.test", e2ePass1)
	// A taken address, in other case (1).
	f.expectCode(409, "EMAIL_ALREADY_REGISTERED", "POST", reg, map[string]any{"email": "ALICE@example.test", "password": e2ePass1})

	// Login before verifying (4): the password is checked first.
	login := authPath("/login")
	f.expectCode(403, "EMAIL_NOT_VERIFIED", "POST", login, map[string]any{"email": "alice@example.test", "password": e2ePass1})
	wrong := f.expectCode(401, "INVALID_CREDENTIALS", "POST", login, map[string]any{"email": "alice@example.test", "password": e2ePass2})
	unknown := f.expectCode(401, "INVALID_CREDENTIALS", "POST", login, map[string]any{"email": "nobody@example.test", "password": e2ePass2})
	assert.Equal(t, wrong.Message, unknown.Message, "unknown email and wrong password look the same")
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", login, map[string]any{"email": "nobody@example.test"})
	e = f.expectCode(400, "VALIDATION_FAILED", "POST", login, map[string]any{"password": e2ePass1})
	assert.Contains(t, e.Details["fields"], "email")

	// verify-email with the mailed link.
	verify := authPath("/verify-email")
	f.expectCode(400, "VALIDATION_FAILED", "POST", verify, map[string]any{})
	f.expectCode(401, "TOKEN_INVALID", "POST", verify, map[string]any{"token": "no-such-token"})
	m := f.mail.WaitFor(t, "alice@example.test", 10*time.Second)
	assert.Equal(t, "Confirm your email address", m.Subject)
	assert.Equal(t, e2eFrom, m.From)
	assert.NotEmpty(t, m.AuthUser, "the mailer authenticated (plain AUTH to a loopback relay)")
	assert.Contains(t, m.Text, e2eBaseURL+"/verify-email?token=", "links are built from MANA_AUTH_BASE_URL")
	aliceTok := mailtest.TokenFromText(t, m.Text, "verify-email")
	u := decodeJSON[e2eUserBody](t, f.expect(200, "POST", verify, map[string]any{"token": aliceTok}).body).User
	assert.Equal(t, alice.ID, u.ID)
	assert.True(t, u.EmailVerified)
	f.expectCode(401, "TOKEN_INVALID", "POST", verify, map[string]any{"token": aliceTok}, "a link is single use")

	// resend-verification voids the old link and mails a new one; it
	// answers the same for unknown and already verified addresses.
	resend := authPath("/resend-verification")
	bobOld := f.mailToken("bob@example.test", "verify-email")
	assert.JSONEq(t, `{"ok":true}`, string(f.expect(202, "POST", resend, map[string]any{"email": "Bob@example.test"}).body))
	bobNew := f.mailToken("bob@example.test", "verify-email")
	assert.NotEqual(t, bobOld, bobNew)
	f.expectCode(401, "TOKEN_INVALID", "POST", verify, map[string]any{"token": bobOld}, "the resent link voids the old one")
	f.expect(200, "POST", verify, map[string]any{"token": bobNew})
	f.expect(202, "POST", resend, map[string]any{"email": "nobody@example.test"})
	f.expect(202, "POST", resend, map[string]any{"email": "alice@example.test"})
	f.expectCode(400, "VALIDATION_FAILED", "POST", resend, map[string]any{"email": "not an address"})

	forgot := authPath("/forgot-password")
	assert.JSONEq(t, `{"ok":true}`, string(f.expect(202, "POST", forgot, map[string]any{"email": "nobody@example.test"}).body))
	f.expectCode(400, "VALIDATION_FAILED", "POST", forgot, map[string]any{"email": "nope"})
	f.mailSettled()
	assert.Zero(t, f.mailsTo("nobody@example.test"), "no mail to an address without an account")
	assert.Equal(t, 1, f.mailsTo("alice@example.test"), "no new link for an address already verified")

	// Login (1) and validate.
	p := f.login("alice@example.test", e2ePass1)
	assert.True(t, p.User.EmailVerified)
	claims := f.claims(p.AccessToken)
	assert.Equal(t, alice.ID.String(), claims["sub"])
	assert.Equal(t, "alice@example.test", claims["email"])
	assert.Equal(t, e2eBaseURL, claims["iss"])
	assert.Equal(t, []any{audience}, claims["aud"])
	assert.Equal(t, "access", claims["typ"])
	assert.InDelta(t, 900, claims["exp"].(float64)-claims["iat"].(float64), 1)
	f.verifyWithJWKS(p.AccessToken)
	val := authPath("/validate")
	for name, tok := range map[string]string{
		"malformed":   "a.b.c",
		"foreign key": f.foreignToken(alice.ID, alice.Email),
	} {
		r := f.expect(401, "POST", val, map[string]any{"token": tok})
		assert.JSONEq(t, `{"valid":false,"error":{"code":"TOKEN_INVALID","message":"token is invalid","requestId":"`+
			r.header.Get("X-Request-Id")+`"}}`, string(r.body), name)
	}
	r = f.expect(401, "POST", val, map[string]any{"token": f.expiredToken(alice.ID, alice.Email)})
	assert.Equal(t, "TOKEN_EXPIRED", decodeEnvelope(t, r.body).Error.Code)
	f.expectCode(400, "VALIDATION_FAILED", "POST", val, map[string]any{})

	// The metrics see each auth route by its pattern.
	metrics := string(f.expect(200, "GET", "/metrics", nil).body)
	assert.Contains(t, metrics, `mana_auth_http_requests_total{code="201",method="POST",route="POST /api/v1/auth/register"} 2`)
	assert.Contains(t, metrics, `mana_auth_http_requests_total{code="401",method="POST",route="POST /api/v1/auth/login"} 3`)
}

// e2eSessionsAndTokens: profile, security events, refresh rotation and
// reuse, session-to-token, logout, and the body rules of every JSON route.
// 5 password operations.
func e2eSessionsAndTokens(t *testing.T, f *e2eServer) {
	dave := f.signup("dave@example.test", e2ePass1)
	p1 := f.login("dave@example.test", e2ePass1)

	// Profile and the Bearer middleware.
	prof := authPath("/profile")
	u := decodeJSON[e2eUserBody](t, f.expect(200, "GET", prof, nil, withBearer(p1.AccessToken)).body).User
	assert.Equal(t, dave, u)
	r := f.expect(401, "GET", prof, nil)
	assert.Equal(t, "UNAUTHORIZED", decodeEnvelope(t, r.body).Error.Code)
	assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"))
	f.expectCode(401, "UNAUTHORIZED", "GET", prof, nil, withHeader("Authorization", "Basic ZGF2ZTpwdw=="))
	r = f.expect(401, "GET", prof, nil, withBearer("x.y.z"))
	assert.Equal(t, "TOKEN_INVALID", decodeEnvelope(t, r.body).Error.Code)
	assert.Equal(t, `Bearer error="invalid_token"`, r.header.Get("WWW-Authenticate"))
	f.expectCode(401, "TOKEN_EXPIRED", "GET", prof, nil, withBearer(f.expiredToken(dave.ID, dave.Email)))

	u = decodeJSON[e2eUserBody](t, f.expect(200, "POST", prof,
		map[string]any{"name": " Dave ", "image": "https://img.example.test/dave.png"}, withBearer(p1.AccessToken)).body).User
	require.NotNil(t, u.Name)
	require.NotNil(t, u.Image)
	assert.Equal(t, "Dave", *u.Name)
	assert.Equal(t, "https://img.example.test/dave.png", *u.Image)
	u = decodeJSON[e2eUserBody](t, f.expect(200, "POST", prof, map[string]any{"name": nil}, withBearer(p1.AccessToken)).body).User
	require.NotNil(t, u.Name, "a null field is left as it is")
	assert.Equal(t, "Dave", *u.Name)
	u = decodeJSON[e2eUserBody](t, f.expect(200, "POST", prof, map[string]any{"image": ""}, withBearer(p1.AccessToken)).body).User
	assert.Nil(t, u.Image, "an empty string clears the field")
	require.NotNil(t, u.Name)
	e := f.expectCode(400, "VALIDATION_FAILED", "POST", prof, map[string]any{"image": "ftp://img.example.test/x"}, withBearer(p1.AccessToken))
	assert.Contains(t, e.Details["fields"], "image")
	e = f.expectCode(400, "VALIDATION_FAILED", "POST", prof, map[string]any{"name": "two\nlines"}, withBearer(p1.AccessToken))
	assert.Contains(t, e.Details["fields"], "name")
	f.expectCode(401, "UNAUTHORIZED", "POST", prof, map[string]any{"name": "x"})

	// Security events: newest first, paged by id.
	evPath := authPath("/security-events")
	all := f.events(p1.AccessToken, "")
	require.GreaterOrEqual(t, len(all.Events), 5, "register, verify, login and three profile updates")
	assert.Nil(t, all.NextBefore)
	assert.True(t, slices.IsSortedFunc(all.Events, func(a, b e2eEvent) int { return cmp.Compare(b.ID, a.ID) }), "newest first")
	assert.Subset(t, eventTypes(all), []string{"REGISTER", "EMAIL_VERIFIED", "LOGIN_SUCCESS", "PROFILE_UPDATED"})
	page1 := f.events(p1.AccessToken, "?limit=2")
	require.Len(t, page1.Events, 2)
	require.NotNil(t, page1.NextBefore)
	assert.Equal(t, all.Events[:2], page1.Events)
	assert.Equal(t, all.Events[1].ID, *page1.NextBefore)
	page2 := f.events(p1.AccessToken, fmt.Sprintf("?limit=2&before=%d", *page1.NextBefore))
	assert.Equal(t, all.Events[2:4], page2.Events)
	for _, q := range []string{"?limit=0", "?limit=101", "?before=0", "?before=x"} {
		f.expectCode(400, "VALIDATION_FAILED", "GET", evPath+q, nil, withBearer(p1.AccessToken))
	}
	f.expectCode(401, "UNAUTHORIZED", "GET", evPath, nil)

	// Refresh: rotation, the grace window, reuse revokes the family.
	ref := authPath("/refresh")
	p2 := f.refresh(p1.RefreshToken)
	assert.NotEqual(t, p1.RefreshToken, p2.RefreshToken)
	assert.Equal(t, dave.ID, p2.User.ID)
	again := f.refresh(p1.RefreshToken)
	assert.Equal(t, p2.RefreshToken, again.RefreshToken, "within the grace window the spent token gets the same child")
	p3 := f.refresh(p2.RefreshToken)
	f.expectCode(401, "TOKEN_INVALID", "POST", ref, map[string]any{"refreshToken": p1.RefreshToken}, "reuse after the child was spent")
	f.expectCode(401, "TOKEN_INVALID", "POST", ref, map[string]any{"refreshToken": p3.RefreshToken}, "the whole family is revoked")
	f.expectCode(401, "UNAUTHORIZED", "POST", authPath("/session-to-token"), nil, withCookie(p1.cookie))
	f.expectCode(400, "VALIDATION_FAILED", "POST", ref, map[string]any{})
	f.expectCode(401, "TOKEN_INVALID", "POST", ref, map[string]any{"refreshToken": "no-such-token"})
	assert.Contains(t, eventTypes(f.events(p1.AccessToken, "")), "TOKEN_REUSE_DETECTED")

	// session-to-token: a new pair in the cookie's session.
	stt := authPath("/session-to-token")
	p4 := f.login("dave@example.test", e2ePass1)
	s1 := decodeJSON[e2ePair](t, f.expect(200, "POST", stt, nil, f.withSession(p4.cookie)).body)
	assert.Equal(t, f.claims(p4.AccessToken)["sid"], f.claims(s1.AccessToken)["sid"], "same session")
	assert.Nil(t, sessionCookie(f.expect(200, "POST", stt, "{}", f.withSession(p4.cookie))))
	f.refresh(s1.RefreshToken)
	f.expectCode(400, "BAD_REQUEST", "POST", stt, "[]", withCookie(p4.cookie))
	f.expectCode(401, "UNAUTHORIZED", "POST", stt, nil)
	f.expectCode(401, "UNAUTHORIZED", "POST", stt, nil, withCookie("no-such-session"))

	// Every JSON route: malformed JSON is 400 BAD_REQUEST, a body over
	// 64 KiB is 413 PAYLOAD_TOO_LARGE, before any work is done.
	big := `{"x":"` + strings.Repeat("a", maxBody) + `"}`
	for _, rt := range []struct {
		method, path string
		bearer       bool
	}{
		{"POST", "/register", false}, {"POST", "/login", false}, {"POST", "/logout", false},
		{"POST", "/session-to-token", false}, {"POST", "/refresh", false}, {"POST", "/validate", false},
		{"POST", "/verify-email", false}, {"POST", "/resend-verification", false},
		{"POST", "/forgot-password", false}, {"POST", "/reset-password", false},
		{"POST", "/profile", true}, {"POST", "/change-email", true}, {"POST", "/change-password", true},
		{"DELETE", "/account", true},
	} {
		var opts []any
		if rt.bearer {
			opts = append(opts, withBearer(p4.AccessToken))
		}
		f.expectCode(400, "BAD_REQUEST", rt.method, authPath(rt.path), `{"email":`, opts...)
		f.expectCode(413, "PAYLOAD_TOO_LARGE", rt.method, authPath(rt.path), big, opts...)
	}

	// Logout by Bearer, with the refresh token of another session of the
	// same user: both sessions end, the cookie is cleared.
	out := authPath("/logout")
	p5 := f.login("dave@example.test", e2ePass1)
	f.expectCode(401, "TOKEN_INVALID", "POST", out, nil, withBearer("bad"))
	f.expectCode(401, "UNAUTHORIZED", "POST", out, nil)
	f.expectCode(400, "BAD_REQUEST", "POST", out, `{"refreshToken":`, withBearer(p4.AccessToken))
	r = f.expect(204, "POST", out, map[string]any{"refreshToken": p5.RefreshToken}, withBearer(p4.AccessToken))
	assert.Empty(t, r.body)
	assertCookieCleared(t, r)
	f.expectCode(401, "TOKEN_INVALID", "POST", ref, map[string]any{"refreshToken": p4.RefreshToken})
	f.expectCode(401, "TOKEN_INVALID", "POST", ref, map[string]any{"refreshToken": p5.RefreshToken})
	f.expectCode(401, "UNAUTHORIZED", "POST", stt, nil, withCookie(p4.cookie))
	// Documented: validate is stateless, the access token of an ended
	// session verifies until it expires.
	f.claims(p4.AccessToken)

	// Logout by cookie alone.
	p6 := f.login("dave@example.test", e2ePass1)
	assertCookieCleared(t, f.expect(204, "POST", out, nil, f.withSession(p6.cookie)))
	f.expectCode(401, "UNAUTHORIZED", "POST", out, nil, withCookie(p6.cookie))
	f.expectCode(401, "TOKEN_INVALID", "POST", ref, map[string]any{"refreshToken": p6.RefreshToken})
	assert.Contains(t, eventTypes(f.events(p6.AccessToken, "")), "LOGOUT")
}

// e2eAccountChanges: change-email (and its confirmation through
// verify-email), change-password, forgot/reset-password, account deletion
// and what a deleted account's still-valid token gets. 20 password
// operations.
func e2eAccountChanges(t *testing.T, f *e2eServer) {
	erin := f.signup("erin@example.test", e2ePass1)
	f.signup("frank@example.test", e2ePass1)
	p1 := f.login("erin@example.test", e2ePass1)
	p2 := f.login("erin@example.test", e2ePass1)
	bearer := withBearer(p1.AccessToken)

	// change-email (4 re-checks).
	ce := authPath("/change-email")
	f.expectCode(401, "UNAUTHORIZED", "POST", ce, map[string]any{"newEmail": "erin.new@example.test", "password": e2ePass1})
	e := f.expectCode(400, "VALIDATION_FAILED", "POST", ce, map[string]any{}, bearer)
	assert.Equal(t, map[string]any{"newEmail": "required", "password": "required"}, e.Details["fields"])
	f.expectCode(400, "VALIDATION_FAILED", "POST", ce, map[string]any{"newEmail": "not an address", "password": e2ePass1}, bearer)
	r := f.expect(401, "POST", ce, map[string]any{"newEmail": "erin.new@example.test", "password": e2ePass2}, bearer)
	assert.Equal(t, "INVALID_CREDENTIALS", decodeEnvelope(t, r.body).Error.Code)
	assert.Empty(t, r.header.Get("WWW-Authenticate"), "a wrong password is no Bearer challenge")
	f.expectCode(409, "EMAIL_ALREADY_REGISTERED", "POST", ce, map[string]any{"newEmail": "Frank@example.test", "password": e2ePass1}, bearer)
	e = f.expectCode(400, "VALIDATION_FAILED", "POST", ce, map[string]any{"newEmail": "erin@example.test", "password": e2ePass1}, bearer)
	assert.Contains(t, e.Details["fields"], "newEmail")
	assert.JSONEq(t, `{"ok":true}`, string(f.expect(202, "POST", ce,
		map[string]any{"newEmail": "Erin.New@example.test", "password": e2ePass1}, bearer).body))
	m := f.mail.WaitFor(t, "erin.new@example.test", 10*time.Second)
	assert.Equal(t, "Confirm your new email address", m.Subject)
	assert.Contains(t, m.Text, e2eBaseURL+"/confirm-email-change?token=")
	tok := mailtest.TokenFromText(t, m.Text, "confirm-email-change")
	u := decodeJSON[e2eUserBody](t, f.expect(200, "POST", authPath("/verify-email"), map[string]any{"token": tok}).body).User
	assert.Equal(t, erin.ID, u.ID)
	assert.Equal(t, "erin.new@example.test", u.Email)
	assert.True(t, u.EmailVerified)
	f.expectCode(401, "TOKEN_INVALID", "POST", authPath("/verify-email"), map[string]any{"token": tok})
	assert.Equal(t, "erin.new@example.test", f.profile(p1.AccessToken).Email)

	// The new address taken between request and confirmation (2): 409
	// at verify-email.
	f.expect(202, "POST", ce, map[string]any{"newEmail": "grace@example.test", "password": e2ePass1}, bearer)
	graceTok := f.mailToken("grace@example.test", "confirm-email-change")
	f.register("grace@example.test", e2ePass1)
	f.expectCode(409, "EMAIL_ALREADY_REGISTERED", "POST", authPath("/verify-email"), map[string]any{"token": graceTok})
	assert.Equal(t, "erin.new@example.test", f.profile(p1.AccessToken).Email)

	// change-password (5): other sessions end, this one stays.
	cp := authPath("/change-password")
	f.expectCode(401, "UNAUTHORIZED", "POST", cp, map[string]any{"currentPassword": e2ePass1, "newPassword": e2ePass2})
	e = f.expectCode(400, "VALIDATION_FAILED", "POST", cp, map[string]any{}, bearer)
	assert.Equal(t, map[string]any{"currentPassword": "required", "newPassword": "required"}, e.Details["fields"])
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", cp, map[string]any{"currentPassword": e2ePass3, "newPassword": e2ePass2}, bearer)
	f.expectCode(400, "WEAK_PASSWORD", "POST", cp, map[string]any{"currentPassword": e2ePass1, "newPassword": "short"}, bearer)
	assert.JSONEq(t, `{"ok":true}`, string(f.expect(200, "POST", cp,
		map[string]any{"currentPassword": e2ePass1, "newPassword": e2ePass2}, bearer).body))
	f.expectCode(401, "TOKEN_INVALID", "POST", authPath("/refresh"), map[string]any{"refreshToken": p2.RefreshToken}, "other sessions end")
	p1b := f.refresh(p1.RefreshToken)
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", authPath("/login"), map[string]any{"email": "erin.new@example.test", "password": e2ePass1})

	// forgot-password and reset-password (2): every session ends.
	rp := authPath("/reset-password")
	f.expect(202, "POST", authPath("/forgot-password"), map[string]any{"email": "erin.new@example.test"})
	m = f.mail.WaitFor(t, "erin.new@example.test", 10*time.Second)
	assert.Equal(t, "Reset your password", m.Subject)
	assert.Contains(t, m.Text, e2eBaseURL+"/reset-password?token=")
	resetTok := mailtest.TokenFromText(t, m.Text, "reset-password")
	e = f.expectCode(400, "VALIDATION_FAILED", "POST", rp, map[string]any{})
	assert.Equal(t, map[string]any{"token": "required", "newPassword": "required"}, e.Details["fields"])
	f.expectCode(401, "TOKEN_INVALID", "POST", rp, map[string]any{"token": "no-such-token", "newPassword": e2ePass3})
	f.expectCode(400, "WEAK_PASSWORD", "POST", rp, map[string]any{"token": resetTok, "newPassword": "short"})
	assert.JSONEq(t, `{"ok":true}`, string(f.expect(200, "POST", rp, map[string]any{"token": resetTok, "newPassword": e2ePass3}).body),
		"a refused password does not spend the link")
	f.expectCode(401, "TOKEN_INVALID", "POST", rp, map[string]any{"token": resetTok, "newPassword": e2ePass1}, "a link is single use")
	f.expectCode(401, "TOKEN_INVALID", "POST", authPath("/refresh"), map[string]any{"refreshToken": p1b.RefreshToken}, "every session ends")
	p3 := f.login("erin.new@example.test", e2ePass3)
	assert.Subset(t, eventTypes(f.events(p3.AccessToken, "")),
		[]string{"EMAIL_CHANGE_REQUESTED", "EMAIL_CHANGED", "PASSWORD_CHANGED", "PASSWORD_RESET_REQUESTED", "PASSWORD_RESET"})

	// Delete the account (3).
	del := authPath("/account")
	bearer = withBearer(p3.AccessToken)
	f.expectCode(401, "UNAUTHORIZED", "DELETE", del, map[string]any{"password": e2ePass3})
	e = f.expectCode(400, "VALIDATION_FAILED", "DELETE", del, map[string]any{}, bearer)
	assert.Equal(t, map[string]any{"password": "required"}, e.Details["fields"])
	f.expectCode(401, "INVALID_CREDENTIALS", "DELETE", del, map[string]any{"password": e2ePass1}, bearer)
	r = f.expect(204, "DELETE", del, map[string]any{"password": e2ePass3}, bearer)
	assert.Empty(t, r.body)
	assertCookieCleared(t, r)

	// The access token still verifies for up to 15 minutes; the account
	// is gone.
	f.expectCode(404, "NOT_FOUND", "GET", authPath("/profile"), nil, bearer)
	f.expectCode(404, "NOT_FOUND", "POST", authPath("/profile"), map[string]any{"name": "x"}, bearer)
	f.expectCode(404, "NOT_FOUND", "POST", ce, map[string]any{"newEmail": "erin.other@example.test", "password": e2ePass3}, bearer)
	f.expectCode(404, "NOT_FOUND", "POST", cp, map[string]any{"currentPassword": e2ePass3, "newPassword": e2ePass1}, bearer)
	f.expectCode(404, "NOT_FOUND", "DELETE", del, map[string]any{"password": e2ePass3}, bearer)
	assert.Empty(t, f.events(p3.AccessToken, "").Events, "the user's events went with the account")
	f.expect(204, "POST", authPath("/logout"), nil, bearer)
	f.expectCode(401, "TOKEN_INVALID", "POST", authPath("/refresh"), map[string]any{"refreshToken": p3.RefreshToken})
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", authPath("/login"), map[string]any{"email": "erin.new@example.test", "password": e2ePass3})
}

// e2eLockout: five wrong passwords lock the account against every
// credential path, a password reset lifts the lock. 14 password
// operations.
func e2eLockout(t *testing.T, f *e2eServer) {
	f.signup("gina@example.test", e2ePass1)
	p := f.login("gina@example.test", e2ePass1)
	login := authPath("/login")
	for range 5 {
		f.expectCode(401, "INVALID_CREDENTIALS", "POST", login, map[string]any{"email": "gina@example.test", "password": e2ePass2})
	}
	e := f.expectCode(429, "ACCOUNT_LOCKED", "POST", login, map[string]any{"email": "gina@example.test", "password": e2ePass2})
	assert.InDelta(t, 1800, e.RemainingSeconds, 120, "locked for 30 minutes")
	f.expectCode(429, "ACCOUNT_LOCKED", "POST", login, map[string]any{"email": "Gina@example.test", "password": e2ePass1}, "also against the right password")
	bearer := withBearer(p.AccessToken)
	f.expectCode(429, "ACCOUNT_LOCKED", "POST", authPath("/change-password"), map[string]any{"currentPassword": e2ePass1, "newPassword": e2ePass2}, bearer)
	f.expectCode(429, "ACCOUNT_LOCKED", "POST", authPath("/change-email"), map[string]any{"newEmail": "gina2@example.test", "password": e2ePass1}, bearer)
	f.expectCode(429, "ACCOUNT_LOCKED", "DELETE", authPath("/account"), map[string]any{"password": e2ePass1}, bearer)

	f.expect(202, "POST", authPath("/forgot-password"), map[string]any{"email": "gina@example.test"})
	tok := f.mailToken("gina@example.test", "reset-password")
	f.expect(200, "POST", authPath("/reset-password"), map[string]any{"token": tok, "newPassword": e2ePass3})
	p2 := f.login("gina@example.test", e2ePass3)
	assert.Subset(t, eventTypes(f.events(p2.AccessToken, "")), []string{"LOGIN_FAILURE", "ACCOUNT_LOCKED", "PASSWORD_RESET", "LOCKOUT_CLEARED"})
}

// e2eWithoutVerification: register answers a token pair and sets the
// session cookie; the daily signup cap. 3 password operations.
func e2eWithoutVerification(t *testing.T, f *e2eServer) {
	st := authPath("/signup-status")
	assert.JSONEq(t, `{"open":true,"limit":1,"remainingToday":1}`, string(f.expect(200, "GET", st, nil).body))
	r := f.expect(201, "POST", authPath("/register"), map[string]any{"email": "henry@example.test", "password": e2ePass1})
	p := decodeJSON[e2ePair](t, r.body)
	assert.NotEmpty(t, p.AccessToken)
	assert.NotEmpty(t, p.RefreshToken)
	assert.Equal(t, "Bearer", p.TokenType)
	assert.Equal(t, 900, p.ExpiresIn)
	assert.False(t, p.User.EmailVerified)
	ck := assertSessionCookie(t, r)
	assert.Equal(t, p.User, f.profile(p.AccessToken))
	f.expect(200, "POST", authPath("/session-to-token"), nil, f.withSession(ck))
	assert.JSONEq(t, `{"open":false,"limit":1,"remainingToday":0}`, string(f.expect(200, "GET", st, nil).body))
	f.expectCode(429, "SIGNUP_LIMIT_REACHED", "POST", authPath("/register"), map[string]any{"email": "ida@example.test", "password": e2ePass1})

	p2 := f.login("henry@example.test", e2ePass1)
	assert.False(t, p2.User.EmailVerified, "login without a verified address")
	tok := f.mailToken("henry@example.test", "verify-email")
	assert.True(t, decodeJSON[e2eUserBody](t, f.expect(200, "POST", authPath("/verify-email"), map[string]any{"token": tok}).body).User.EmailVerified)
	assertCookieCleared(t, f.expect(204, "POST", authPath("/logout"), nil, f.withSession(ck)))
}

// e2eIPLimitUntrusted: MANA_AUTH_IP_RATE=3/min, no trusted proxies: the
// 4th login from one client is refused whatever X-Forwarded-For claims.
// 3 password operations.
func e2eIPLimitUntrusted(t *testing.T, f *e2eServer) {
	login := authPath("/login")
	for i := range 3 {
		f.expectCode(401, "INVALID_CREDENTIALS", "POST", login,
			map[string]any{"email": fmt.Sprintf("nobody%d@example.test", i), "password": e2ePass1},
			withXFF(fmt.Sprintf("198.51.100.%d", i+1)))
	}
	e := f.expectCode(429, "RATE_LIMITED", "POST", login, map[string]any{"email": "nobody9@example.test", "password": e2ePass1},
		withXFF("198.51.100.99"), "a spoofed X-Forwarded-For gets no fresh bucket")
	assert.True(t, e.RemainingSeconds >= 1 && e.RemainingSeconds <= 20, "3/min frees one unit every 20 s: %d", e.RemainingSeconds)
	f.expectCode(429, "RATE_LIMITED", "POST", login, map[string]any{"email": "nobody9@example.test", "password": e2ePass1})
	// Routes outside the limit still answer.
	f.expectCode(400, "VALIDATION_FAILED", "POST", authPath("/validate"), map[string]any{})
	f.expect(200, "GET", authPath("/signup-status"), nil)
	assert.Equal(t, map[string]int{"127.0.0.1": 3}, f.attemptsByIP(), "the attempts are recorded with the peer address")
}

// e2eIPLimitTrusted: MANA_AUTH_TRUSTED_PROXIES=127.0.0.1/32: the client
// is the address the proxy appended. 5 password operations.
func e2eIPLimitTrusted(t *testing.T, f *e2eServer) {
	login := authPath("/login")
	body := func(i int) map[string]any {
		return map[string]any{"email": fmt.Sprintf("nobody%d@example.test", i), "password": e2ePass1}
	}
	for i := range 3 {
		f.expectCode(401, "INVALID_CREDENTIALS", "POST", login, body(i), withXFF("203.0.113.7"))
	}
	f.expectCode(429, "RATE_LIMITED", "POST", login, body(3), withXFF("203.0.113.7"))
	f.expectCode(429, "RATE_LIMITED", "POST", login, body(4), withXFF("192.0.2.200, 203.0.113.7"),
		"entries left of the client's address are not believed")
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", login, body(5), withXFF("203.0.113.8"))
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", login, body(6))
	assert.Equal(t, map[string]int{"203.0.113.7": 3, "203.0.113.8": 1, "127.0.0.1": 1}, f.attemptsByIP())
}

// e2eIPLimitRoutes: MANA_AUTH_IP_RATE=1/min: each limited route answers
// 429 RATE_LIMITED to the second request of one client. No password
// operations (the bodies fail validation).
func e2eIPLimitRoutes(t *testing.T, f *e2eServer) {
	for i, p := range []string{"/register", "/login", "/verify-email", "/resend-verification", "/forgot-password", "/reset-password",
		"/mfa/verify"} {
		ip := withXFF(fmt.Sprintf("192.0.2.%d", i+1))
		f.expectCode(400, "VALIDATION_FAILED", "POST", authPath(p), map[string]any{}, ip)
		f.expectCode(429, "RATE_LIMITED", "POST", authPath(p), map[string]any{}, ip)
	}
	ip := withXFF("192.0.2.1")
	f.expectCode(400, "VALIDATION_FAILED", "POST", authPath("/validate"), map[string]any{}, ip)
	f.expectCode(400, "VALIDATION_FAILED", "POST", authPath("/refresh"), map[string]any{}, ip)
	f.expect(200, "GET", authPath("/signup-status"), nil, ip)
}

// e2eDatabaseOutage: with the database unreachable every route that needs
// it answers 503 SERVICE_UNAVAILABLE — never a 401 that blames the user —
// and the routes that do not need it keep working. 1 password operation.
func e2eDatabaseOutage(t *testing.T, f *e2eServer) {
	f.expect(200, "GET", authPath("/signup-status"), nil)
	uid := uuid.New()
	bearer := withBearer(f.validToken(uid, "ann@example.test"))
	f.proxy.Cut()
	for _, c := range []struct {
		method, path string
		body         any
		opts         []any
	}{
		{"POST", "/login", map[string]any{"email": "ann@example.test", "password": e2ePass1}, nil},
		{"POST", "/register", map[string]any{"email": "ann@example.test", "password": e2ePass1}, nil},
		{"POST", "/refresh", map[string]any{"refreshToken": "some-token"}, nil},
		{"POST", "/verify-email", map[string]any{"token": "some-token"}, nil},
		{"POST", "/resend-verification", map[string]any{"email": "ann@example.test"}, nil},
		{"POST", "/forgot-password", map[string]any{"email": "ann@example.test"}, nil},
		{"POST", "/reset-password", map[string]any{"token": "some-token", "newPassword": e2ePass2}, nil},
		{"POST", "/session-to-token", nil, []any{withCookie("some-session")}},
		{"POST", "/logout", nil, []any{bearer}},
		{"GET", "/profile", nil, []any{bearer}},
		{"POST", "/profile", map[string]any{"name": "Ann"}, []any{bearer}},
		{"POST", "/change-email", map[string]any{"newEmail": "ann2@example.test", "password": e2ePass1}, []any{bearer}},
		{"POST", "/change-password", map[string]any{"currentPassword": e2ePass1, "newPassword": e2ePass2}, []any{bearer}},
		{"DELETE", "/account", map[string]any{"password": e2ePass1}, []any{bearer}},
		{"GET", "/security-events", nil, []any{bearer}},
		{"GET", "/signup-status", nil, nil},
		{"POST", "/mfa/verify", map[string]any{"mfaToken": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "code": "123456"}, nil},
		{"POST", "/mfa/totp/enroll", map[string]any{"password": e2ePass1}, []any{bearer}},
		{"POST", "/mfa/totp/confirm", map[string]any{"code": "123456"}, []any{bearer}},
		{"DELETE", "/mfa/totp", map[string]any{"code": "123456"}, []any{bearer}},
		{"GET", "/mfa/status", nil, []any{bearer}},
	} {
		r := f.expect(503, c.method, authPath(c.path), c.body, c.opts...)
		env := decodeEnvelope(t, r.body)
		assert.Equal(t, "SERVICE_UNAVAILABLE", env.Error.Code, "%s %s", c.method, c.path)
		assert.Nil(t, env.Error.Details, "%s %s: no details on a 5xx", c.method, c.path)
		for _, leak := range []string{"127.0.0.1", "dial", "refused", "SQLSTATE", "pgx"} {
			assert.NotContains(t, string(r.body), leak, "%s %s", c.method, c.path)
		}
	}
	f.expectCode(503, "SERVICE_UNAVAILABLE", "GET", "/readyz", nil)
	// No database needed: these still answer.
	f.claims(f.validToken(uid, "ann@example.test"))
	f.expect(200, "GET", "/.well-known/jwks.json", nil)
	f.expect(200, "GET", "/healthz", nil)
	assert.Contains(t, f.logs.String(), "level=ERROR", "each outage answer is logged with its cause")

	f.proxy.Restore()
	// The routes recover without a restart.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if f.send("GET", authPath("/signup-status"), nil).status == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "signup-status still fails 10 s after the database is back")
	}
}

// ---- the fixture ----

// e2eSetup configures one group's server.
type e2eSetup struct {
	env          map[string]string // on top of e2eServer's defaults
	viaProxy     bool              // the pool connects through a testutil.Proxy (e2eServer.proxy)
	viaBouncer   bool              // the pool, configured as the server configures it, connects through a testutil.PgBouncer
	errorsLogged bool              // the group provokes 5xx answers, logged at error level
	clock        *authtest.Clock   // the auth stack's clock; nil: the real one
	hasher       password.HasherConfig
	admission    int // Config.admission
}

// e2eServer is one reference server with its own database, mail server and
// signing key, and the spec client that talks to it.
type e2eServer struct {
	t     *testing.T
	c     *specClient
	cov   *specCoverage
	mail  *mailtest.Server
	db    *testutil.Database
	proxy *testutil.Proxy
	cfg   Config
	auth  *authStack
	logs  *syncBuffer
	key   token.SigningKey
	clock *authtest.Clock // e2eSetup.clock
}

func newE2EServer(t *testing.T, cov *specCoverage, setup e2eSetup) *e2eServer {
	t.Helper()
	f := &e2eServer{t: t, cov: cov, mail: mailtest.NewServer(t), db: testutil.DB(t), logs: &syncBuffer{}}
	keyPEM := testSigningKeyPEM(t)
	key, err := token.ParseSigningKeyPEM([]byte(keyPEM))
	require.NoError(t, err)
	f.key = key
	env := map[string]string{
		"MANA_AUTH_STATE_DIR":                  t.TempDir(),
		"MANA_AUTH_BASE_URL":                   e2eBaseURL,
		"MANA_AUTH_SIGNING_KEY":                keyPEM,
		"SMTP_URL":                             f.mail.URL().String(),
		"MAIL_FROM":                            e2eFrom,
		"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION": "true",
	}
	maps.Copy(env, setup.env)
	f.cfg, err = LoadConfig(mapEnv(env))
	require.NoError(t, err)
	if f.clock = setup.clock; f.clock != nil {
		f.cfg.now = f.clock.Now
	}
	f.cfg.hasher, f.cfg.admission = setup.hasher, setup.admission

	pool := f.db.Runtime
	if setup.viaProxy {
		f.proxy = testutil.NewProxy(t, testutil.ServerAddr(t))
		pool = testutil.OpenPool(t, f.proxy.URL(f.db.RuntimeURL))
	}
	if setup.viaBouncer {
		b := testutil.PgBouncer(t, f.db, testutil.BouncerOptions{PoolSize: 1})
		cfg, err := runtimePoolConfig(b.RuntimeURL)
		require.NoError(t, err)
		pool, err = pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
	}
	// Registered before the auth stack's Close, so it runs after it (and
	// sees the log of every mail sent in the background).
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", f.logs)
			return
		}
		if !setup.errorsLogged {
			assert.NotContains(t, f.logs.String(), "level=ERROR", "no answer of this group should be a logged server error")
		}
		assert.NotContains(t, f.logs.String(), "mail not sent")
	})
	logger := slog.New(slog.NewTextHandler(f.logs, nil))
	s := newServer(serverDeps{Config: f.cfg, Logger: logger, Pool: pool, Sources: sources()})
	f.auth, err = newAuthStack(context.Background(), f.cfg, pool, s.metrics.registry, logger)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, f.auth.Close()) })
	s.mountAuth(f.auth)
	require.NoError(t, s.mountPages(f.cfg))
	f.c = newSpecClient(t, s.Handler())
	return f
}

// e2eReply is one answer, already validated against the spec.
type e2eReply struct {
	status int
	header http.Header
	body   []byte
}

// reqOpt adds to a request's header.
type reqOpt func(http.Header)

func withHeader(k, v string) reqOpt  { return func(h http.Header) { h.Set(k, v) } }
func withBearer(tok string) reqOpt   { return withHeader("Authorization", "Bearer "+tok) }
func withXFF(v string) reqOpt        { return withHeader("X-Forwarded-For", v) }
func withCookie(value string) reqOpt { return withHeader("Cookie", manaauth.SessionCookie+"="+value) }

// withSession sends the session cookie with its CSRF token, as the hosted
// pages do.
func (f *e2eServer) withSession(value string) reqOpt {
	return func(h http.Header) {
		h.Set("Cookie", manaauth.SessionCookie+"="+value)
		h.Set(manaauth.CSRFHeader, f.auth.svc.CSRFToken(value))
	}
}

// sessionCookie is the mana_session cookie the answer sets, or nil.
func sessionCookie(r e2eReply) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == manaauth.SessionCookie {
			return c
		}
	}
	return nil
}

// send makes one request through the spec client (which validates the
// answer against openapi.yaml), records it for the coverage report and
// checks what every answer must carry. body is nil (no body), a string
// (sent as is) or a value sent as JSON. extra holds reqOpts and, as a
// string, a message for failures.
func (f *e2eServer) send(method, path string, body any, extra ...any) e2eReply {
	f.t.Helper()
	h := http.Header{}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
		h.Set("Content-Type", "application/json")
	default:
		raw, err := json.Marshal(b)
		require.NoError(f.t, err)
		rd = bytes.NewReader(raw)
		h.Set("Content-Type", "application/json")
	}
	for _, x := range extra {
		if o, ok := x.(reqOpt); ok {
			o(h)
		}
	}
	resp, b := f.c.do(method, path, rd, h)
	r := e2eReply{status: resp.StatusCode, header: resp.Header, body: b}
	f.cov.record(f.t, method, path, r.status)
	f.checkCommon(method, path, r)
	return r
}

// checkCommon checks the conventions of every answer (openapi.yaml's
// description) that the schema cannot express.
func (f *e2eServer) checkCommon(method, path string, r e2eReply) {
	t := f.t
	t.Helper()
	what := method + " " + path
	id := r.header.Get("X-Request-Id")
	assert.NotEmpty(t, id, "%s: X-Request-Id", what)
	assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"), what)
	assert.Equal(t, "no-referrer", r.header.Get("Referrer-Policy"), what)
	switch {
	case path == "/.well-known/jwks.json" && r.status == http.StatusOK:
	case strings.HasPrefix(path, "/assets/") && r.status < 400:
		assert.Equal(t, "no-cache", r.header.Get("Cache-Control"), "%s: assets are revalidated by their ETag", what)
	default:
		assert.Equal(t, "no-store", r.header.Get("Cache-Control"), what)
	}
	if r.status == http.StatusNoContent {
		assert.Empty(t, r.body, what)
	}
	if r.status < 400 {
		return
	}
	var e struct {
		Error struct {
			Code             string `json:"code"`
			Message          string `json:"message"`
			RequestID        string `json:"requestId"`
			RemainingSeconds int    `json:"remainingSeconds"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &e), "%s: %s", what, r.body)
	assert.Equal(t, id, e.Error.RequestID, "%s: the envelope carries the request id", what)
	assert.NotEmpty(t, e.Error.Message, what)
	retry := r.header.Get("Retry-After")
	switch e.Error.Code {
	case "RATE_LIMITED", "ACCOUNT_LOCKED":
		assert.Positive(t, e.Error.RemainingSeconds, what)
		assert.Equal(t, strconv.Itoa(e.Error.RemainingSeconds), retry, "%s: Retry-After is remainingSeconds", what)
	case "SERVICE_UNAVAILABLE":
		assert.Zero(t, e.Error.RemainingSeconds, what)
		assert.Contains(t, []string{"1", strconv.Itoa(autherr.OutageRetrySeconds)}, retry, "%s: every 503 tells the client when to retry", what)
	default:
		assert.Zero(t, e.Error.RemainingSeconds, "%s: %s has no remainingSeconds", what, e.Error.Code)
		assert.Empty(t, retry, "%s: %s has no Retry-After", what, e.Error.Code)
	}
	if r.status == http.StatusUnauthorized && behindBearer(method, path) {
		switch e.Error.Code {
		case "UNAUTHORIZED":
			assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"), what)
		case "TOKEN_INVALID", "TOKEN_EXPIRED":
			assert.Equal(t, `Bearer error="invalid_token"`, r.header.Get("WWW-Authenticate"), what)
		}
	}
}

// behindBearer reports whether a route sits behind the Bearer middleware
// (RFC 6750 challenges on its 401 answers).
func behindBearer(method, path string) bool {
	switch method + " " + strings.TrimPrefix(path, authPrefix) {
	case "GET /profile", "POST /profile", "POST /change-email", "POST /change-password", "DELETE /account":
		return true
	}
	switch method + " " + strings.TrimPrefix(path, passkeysPrefix) {
	case "POST /register/options", "POST /register/verify", "GET ", "GET /":
		return true
	}
	if (method == "PATCH" || method == "DELETE") && strings.HasPrefix(path, passkeysPrefix+"/") {
		return true
	}
	if strings.HasPrefix(path, mfaPrefix+"/") && path != mfaPrefix+"/verify" {
		return true
	}
	return method == "GET" && strings.HasPrefix(path, authPrefix+"/security-events")
}

// expect sends and requires the status.
func (f *e2eServer) expect(want int, method, path string, body any, extra ...any) e2eReply {
	f.t.Helper()
	r := f.send(method, path, body, extra...)
	require.Equal(f.t, want, r.status, "%s %s answered %s %s", method, path, r.body, messageOf(extra))
	return r
}

// e2eError is the error of an envelope.
type e2eError struct {
	Code             string         `json:"code"`
	Message          string         `json:"message"`
	RemainingSeconds int            `json:"remainingSeconds"`
	Details          map[string]any `json:"details"`
}

// expectCode sends and requires the status and the envelope's code.
func (f *e2eServer) expectCode(want int, code, method, path string, body any, extra ...any) e2eError {
	f.t.Helper()
	r := f.expect(want, method, path, body, extra...)
	var e struct {
		Error e2eError `json:"error"`
	}
	require.NoError(f.t, json.Unmarshal(r.body, &e))
	require.Equal(f.t, code, e.Error.Code, "%s %s answered %s %s", method, path, r.body, messageOf(extra))
	return e.Error
}

func messageOf(extra []any) string {
	for _, x := range extra {
		if s, ok := x.(string); ok {
			return "(" + s + ")"
		}
	}
	return ""
}

type e2eUser struct {
	ID            uuid.UUID `json:"id"`
	Email         string    `json:"email"`
	Name          *string   `json:"name"`
	Image         *string   `json:"image"`
	EmailVerified bool      `json:"emailVerified"`
	CreatedAt     time.Time `json:"createdAt"`
}

type e2eUserBody struct {
	User e2eUser `json:"user"`
}

type e2ePair struct {
	AccessToken  string  `json:"accessToken"`
	RefreshToken string  `json:"refreshToken"`
	TokenType    string  `json:"tokenType"`
	ExpiresIn    int     `json:"expiresIn"`
	User         e2eUser `json:"user"`
	cookie       string  // the session cookie set with the pair (login)
}

type e2eEvent struct {
	ID        int64           `json:"id"`
	Type      string          `json:"type"`
	IPAddress *string         `json:"ipAddress"`
	UserAgent *string         `json:"userAgent"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt time.Time       `json:"createdAt"`
}

type e2eEvents struct {
	Events     []e2eEvent `json:"events"`
	NextBefore *int64     `json:"nextBefore"`
}

func eventTypes(p e2eEvents) []string {
	var out []string
	for _, e := range p.Events {
		out = append(out, e.Type)
	}
	return out
}

func decodeJSON[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "body %s", b)
	return v
}

// register creates an account (one hash).
func (f *e2eServer) register(email, password string) e2eUser {
	f.t.Helper()
	r := f.expect(201, "POST", authPath("/register"), map[string]any{"email": email, "password": password})
	return decodeJSON[e2eUserBody](f.t, r.body).User
}

// signup registers (one hash) and verifies the address with the mailed
// link.
func (f *e2eServer) signup(email, password string) e2eUser {
	f.t.Helper()
	f.register(email, password)
	tok := f.mailToken(email, "verify-email")
	u := decodeJSON[e2eUserBody](f.t, f.expect(200, "POST", authPath("/verify-email"), map[string]any{"token": tok}).body).User
	require.True(f.t, u.EmailVerified)
	return u
}

// login signs in (one verification) and checks the session cookie.
func (f *e2eServer) login(email, password string) e2ePair {
	f.t.Helper()
	r := f.expect(200, "POST", authPath("/login"), map[string]any{"email": email, "password": password})
	p := decodeJSON[e2ePair](f.t, r.body)
	assert.Equal(f.t, "Bearer", p.TokenType)
	assert.Equal(f.t, 900, p.ExpiresIn)
	p.cookie = assertSessionCookie(f.t, r)
	return p
}

// assertSessionCookie checks the cookie's attributes (development: no
// Secure) and returns its value.
func assertSessionCookie(t *testing.T, r e2eReply) string {
	t.Helper()
	c := sessionCookie(r)
	require.NotNil(t, c, "Set-Cookie %s", manaauth.SessionCookie)
	assert.NotEmpty(t, c.Value)
	assert.Equal(t, "/", c.Path)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
	assert.Equal(t, 30*24*3600, c.MaxAge)
	assert.True(t, c.Secure, "Secure unless the base URL is http on localhost (this one is http on another host)")
	return c.Value
}

func assertCookieCleared(t *testing.T, r e2eReply) {
	t.Helper()
	c := sessionCookie(r)
	require.NotNil(t, c, "the session cookie is cleared")
	assert.Empty(t, c.Value)
	assert.Negative(t, c.MaxAge, "Max-Age=0")
	assert.Equal(t, "/", c.Path)
	assert.True(t, c.HttpOnly)
}

func (f *e2eServer) refresh(tok string) e2ePair {
	f.t.Helper()
	r := f.expect(200, "POST", authPath("/refresh"), map[string]any{"refreshToken": tok})
	return decodeJSON[e2ePair](f.t, r.body)
}

func (f *e2eServer) profile(access string) e2eUser {
	f.t.Helper()
	return decodeJSON[e2eUserBody](f.t, f.expect(200, "GET", authPath("/profile"), nil, withBearer(access)).body).User
}

func (f *e2eServer) events(access, query string) e2eEvents {
	f.t.Helper()
	return decodeJSON[e2eEvents](f.t, f.expect(200, "GET", authPath("/security-events")+query, nil, withBearer(access)).body)
}

// claims validates an access token at POST /validate.
func (f *e2eServer) claims(access string) map[string]any {
	f.t.Helper()
	v := decodeJSON[struct {
		Valid  bool           `json:"valid"`
		Claims map[string]any `json:"claims"`
	}](f.t, f.expect(200, "POST", authPath("/validate"), map[string]any{"token": access}).body)
	require.True(f.t, v.Valid)
	return v.Claims
}

// mailToken waits for the next mail to to and returns the token of its
// one link to path.
func (f *e2eServer) mailToken(to, path string) string {
	f.t.Helper()
	m := f.mail.WaitFor(f.t, to, 10*time.Second)
	return mailtest.TokenFromText(f.t, m.Text, path)
}

// mailSettled waits until the mails the service sends in the background
// have gone out. The service's Close does exactly that and leaves it
// usable; the test sends no request meanwhile.
func (f *e2eServer) mailSettled() { f.auth.svc.Close() }

func (f *e2eServer) mailsTo(addr string) int {
	n := 0
	for _, m := range f.mail.Messages() {
		if slices.ContainsFunc(m.To, func(to string) bool { return strings.EqualFold(to, addr) }) {
			n++
		}
	}
	return n
}

// attemptsByIP counts auth.login_attempts by address.
func (f *e2eServer) attemptsByIP() map[string]int {
	f.t.Helper()
	rows, err := f.db.Owner.Query(context.Background(),
		`SELECT coalesce(host(ip_address), 'NULL'), count(*) FROM auth.login_attempts GROUP BY 1`)
	require.NoError(f.t, err)
	out := map[string]int{}
	for rows.Next() {
		var ip string
		var n int
		require.NoError(f.t, rows.Scan(&ip, &n))
		out[ip] = n
	}
	require.NoError(f.t, rows.Err())
	return out
}

// tokensAt returns a Tokens with the server's key, issuer and audience
// whose clock reads now+skew.
func (f *e2eServer) tokensAt(key token.SigningKey, skew time.Duration) *token.Tokens {
	f.t.Helper()
	tk, err := token.New(token.Config{Issuer: f.cfg.BaseURL.String(), Audience: audience, Signing: key,
		Now: func() time.Time { return time.Now().Add(skew) }})
	require.NoError(f.t, err)
	return tk
}

func (f *e2eServer) issue(tk *token.Tokens, userID uuid.UUID, email string) string {
	f.t.Helper()
	tok, _, err := tk.Issue(userID, email, uuid.New())
	require.NoError(f.t, err)
	return tok
}

// validToken is an access token the server accepts (its own key), in a
// live session of the user written straight into the database (no
// password hashing). For a user that does not exist (a deleted account)
// the session is random and not in the database: the routes with the
// live-session check refuse it.
func (f *e2eServer) validToken(userID uuid.UUID, email string) string {
	f.t.Helper()
	sid := uuid.New()
	_, err := f.db.Owner.Exec(context.Background(), `INSERT INTO auth.sessions (id, user_id, created_at, last_used_at, expires_at)
		SELECT $1, id, now(), now(), now() + interval '1 day' FROM auth.users WHERE id = $2`, sid, userID)
	require.NoError(f.t, err)
	tok, _, err := f.tokensAt(f.key, 0).Issue(userID, email, sid)
	require.NoError(f.t, err)
	return tok
}

// expiredToken is signed with the server's key an hour ago.
func (f *e2eServer) expiredToken(userID uuid.UUID, email string) string {
	return f.issue(f.tokensAt(f.key, -time.Hour), userID, email)
}

// foreignToken is well formed and current but signed by another key.
func (f *e2eServer) foreignToken(userID uuid.UUID, email string) string {
	f.t.Helper()
	other, err := token.ParseSigningKeyPEM([]byte(testSigningKeyPEM(f.t)))
	require.NoError(f.t, err)
	return f.issue(f.tokensAt(other, 0), userID, email)
}

type e2eJWK struct {
	Kid string `json:"kid"`
	X   string `json:"x"`
}

type e2eJWKS struct {
	Keys []e2eJWK `json:"keys"`
}

// verifyWithJWKS checks an access token's EdDSA signature with the key the
// JWKS publishes under its kid, as a relying service would.
func (f *e2eServer) verifyWithJWKS(tok string) {
	t := f.t
	t.Helper()
	set := decodeJSON[e2eJWKS](t, f.expect(200, "GET", "/.well-known/jwks.json", nil).body)
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	require.NoError(t, json.Unmarshal(rawHeader, &hdr))
	assert.Equal(t, "EdDSA", hdr.Alg)
	i := slices.IndexFunc(set.Keys, func(k e2eJWK) bool { return k.Kid == hdr.Kid })
	require.GreaterOrEqual(t, i, 0, "kid %q is published", hdr.Kid)
	pub, err := base64.RawURLEncoding.DecodeString(set.Keys[i].X)
	require.NoError(t, err)
	require.Len(t, pub, ed25519.PublicKeySize)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	assert.True(t, ed25519.Verify(ed25519.PublicKey(pub), []byte(parts[0]+"."+parts[1]), sig), "signature verifies with the JWKS key")
}

// ---- spec coverage ----

// specCoverage records which status each documented operation answered,
// across parallel groups.
type specCoverage struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]map[int]bool // "METHOD /spec/path" → statuses
	ran  map[string]bool
	n    int // requests
}

func newSpecCoverage(t *testing.T) *specCoverage {
	t.Helper()
	doc := loadSpec(t)
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return &specCoverage{doc: doc, router: router, seen: map[string]map[int]bool{}, ran: map[string]bool{}}
}

func (c *specCoverage) started(group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ran[group] = true
}

func (c *specCoverage) groups() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ran)
}

func (c *specCoverage) record(t testing.TB, method, path string, status int) {
	t.Helper()
	req, err := http.NewRequest(method, "http://localhost:8080"+path, nil)
	require.NoError(t, err)
	c.mu.Lock()
	defer c.mu.Unlock()
	route, _, err := c.router.FindRoute(req)
	require.NoError(t, err, "%s %s is not documented", method, path)
	key := method + " " + route.Path
	if c.seen[key] == nil {
		c.seen[key] = map[int]bool{}
	}
	c.seen[key][status] = true
	c.n++
}

// check requires a 2xx answer from every documented operation and logs
// the documented answers no group produced.
func (c *specCoverage) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var no2xx, unproduced []string
	for _, op := range documentedRoutes(c.doc) {
		method, path, _ := strings.Cut(op, " ")
		seen := c.seen[op]
		if !slices.ContainsFunc(slices.Collect(maps.Keys(seen)), func(s int) bool { return s >= 200 && s < 300 }) {
			no2xx = append(no2xx, op)
		}
		for code := range c.doc.Paths.Find(path).GetOperation(method).Responses.Map() {
			if n, err := strconv.Atoi(code); err != nil || !seen[n] {
				unproduced = append(unproduced, op+" "+code)
			}
		}
	}
	assert.Empty(t, no2xx, "documented operations that never answered 2xx")
	slices.Sort(unproduced)
	t.Logf("%d requests, every answer valid against openapi.yaml", c.n)
	t.Logf("documented answers no test produced (%d):\n  %s", len(unproduced), strings.Join(unproduced, "\n  "))
}
