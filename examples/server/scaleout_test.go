package main

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/migrate"
	"github.com/mana-how/mana-auth/passkey"
	"github.com/mana-how/mana-auth/token"
)

// TestScaleOut proves design.md's "Scale": several instances behind a load
// balancer behave exactly like one. Three instances of the server binary
// start at the same moment on one fresh database (migrations race: one
// applies them, the others wait on the advisory lock), their runtime pools
// go through a PgBouncer in transaction mode (migrations over a direct
// connection), their rate limits live in one Redis, and a round-robin
// client drives them. Each case states what the answer would be if
// instances kept their own state. docs/deploy.md points here.
//
//	go test -run ScaleOut -v ./examples/server/
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the scale-out test builds the server binary and runs three instances behind PgBouncer with Redis (about a minute)")
	}
	avoidMidnightUTC(t)
	start := time.Now()
	bin := buildServer(t)
	c := startCluster(t, bin, clusterConfig{instances: 3, bouncerCap: 6, env: map[string]string{
		"MAX_DAILY_SIGNUPS": strconv.Itoa(scaleSignupCap),
		"MANA_AUTH_IP_RATE": strconv.Itoa(scaleIPLimit) + "/h",
		// Cheaper than the default (m=19456,t=2): at the default cost the
		// burst of 200 needs more than the hasher's 5 s of queueing on two
		// shared cores, and the late ones are answered 503 (correctly, but
		// this test is about counting, not capacity).
		"MANA_AUTH_ARGON2ID":      "m=8192,t=1,p=1",
		"MANA_AUTH_REFRESH_GRACE": scaleRefreshGrace.String(),
	}})
	t.Logf("cluster up after %v", time.Since(start).Round(time.Millisecond))
	c.checkMigrations(t)

	// The signup cap comes first: the accounts it lets through are the
	// ones the other cases use.
	users := scaleSignupCapCase(t, c)

	cases := []struct {
		name string
		run  func(t *testing.T, c *cluster, u scaleUser)
	}{
		{"200 parallel wrong passwords: exactly 5 evaluated", scaleLockoutCase},
		{"the per-IP limit is counted once across instances", scaleIPLimitCase},
		{"a refresh token replayed after the grace window revokes the family everywhere", scaleRefreshReplayCase},
		{"a session revoked on A is refused on B within the cache time", scaleSessionRevokeCase},
		{"an MFA token from A is verified on B, once", scaleMFACase},
		{"an API key revoked on C is refused by B within the cache time", scaleAPIKeyCase},
		{"a passkey ceremony begun on one instance completes on another, once", scalePasskeyCase},
		{"the passkey options limit is counted once across instances", scalePasskeyLimitCase},
		// A further case is one more function of this shape, with an
		// account of its own: raise scaleSignupCap (and scaleSignupTries)
		// by one.
	}
	require.Equal(t, scaleSignupCap, len(cases)+scaleLoadWorkers, "one account per case and per load worker")
	t.Run("cross-instance", func(t *testing.T) {
		for i, tc := range cases {
			u := users[i]
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, c, u)
			})
		}
	})
	if t.Failed() {
		return
	}

	var kill killReport
	t.Run("an instance killed mid-load", func(t *testing.T) {
		kill = scaleKillCase(t, c, users[len(cases):len(cases)+scaleLoadWorkers])
	})
	t.Run("nothing half-written", func(t *testing.T) { c.checkInvariants(t, kill) })
	t.Run("all of it through PgBouncer in transaction mode", c.checkBouncer)
	t.Run("survivors stop cleanly", c.stopSurvivors)
	t.Logf("scale-out test done in %v", time.Since(start).Round(time.Millisecond))
}

const (
	scaleSignupCap   = 14 // MAX_DAILY_SIGNUPS: one account per case + scaleLoadWorkers
	scaleSignupTries = 42 // parallel registrations, 14 per instance
	scaleIPLimit     = 10 // MANA_AUTH_IP_RATE per hour: no unit comes back during the test
	scaleBurst       = 200
	scaleMaxFailures = 5 // lockout.DefaultPolicy().MaxFailures
	scaleLoadWorkers = 6
	scalePassword    = "violet-harbor-lantern-58"
	// scaleRefreshGrace is the instances' MANA_AUTH_REFRESH_GRACE; the
	// replay case waits it out.
	scaleRefreshGrace = 2 * time.Second
)

// scaleUser is one account the signup case created, with the token pair
// of its registration.
type scaleUser struct {
	ID    uuid.UUID
	Email string
	Pair  tokenPair
}

type tokenPair struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

// avoidMidnightUTC waits past midnight UTC when it is less than 90 s
// away: the signup cap counts per UTC day, and a burst that straddled
// midnight would rightly let up to twice the cap through.
func avoidMidnightUTC(t *testing.T) {
	now := time.Now().UTC()
	midnight := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	if d := midnight.Sub(now); d < 90*time.Second {
		t.Logf("waiting %v for midnight UTC to pass (the signup cap counts per day)", d.Round(time.Second))
		time.Sleep(d + time.Second)
	}
}

// checkMigrations: exactly one instance applied every migration, the
// others found nothing left once they had the lock. Without the advisory
// lock the instances, released together, would apply the same files at
// once and all but one fail on the migrations table's primary key (or on
// CREATE of an existing table).
func (c *cluster) checkMigrations(t *testing.T) {
	t.Helper()
	files, err := migrate.Files(sources()...)
	require.NoError(t, err)
	var appliers []string
	for _, in := range c.insts {
		var appliedNow float64 = -1
		var appliedLines int
		for _, l := range logLines(in.proc.Output()) {
			switch l["msg"] {
			case "migrations current":
				appliedNow = l["applied_now"].(float64)
			case "migrate: applied":
				appliedLines++
			}
		}
		require.NotEqual(t, float64(-1), appliedNow, "instance %s logged no \"migrations current\"", in.name)
		if appliedNow > 0 {
			appliers = append(appliers, in.name)
			assert.Equal(t, len(files), int(appliedNow), "instance %s applied only some migrations", in.name)
		}
		assert.Equal(t, int(appliedNow), appliedLines, "instance %s: applied_now and its applied lines", in.name)
	}
	assert.Len(t, appliers, 1, "instances that applied migrations: %v", appliers)
	var recorded int
	require.NoError(t, c.pool().QueryRow(context.Background(), "SELECT count(*) FROM "+migrate.Table).Scan(&recorded))
	assert.Equal(t, len(files), recorded, "rows in %s", migrate.Table)
	t.Logf("migrations: %d files, applied by instance %v; the others waited for the lock and applied none", len(files), appliers)
}

// scaleSignupCapCase: 36 parallel registrations spread over the
// instances, with MAX_DAILY_SIGNUPS=12: exactly 12 accounts. The cap is
// one conditional upsert in PostgreSQL; a cap counted per instance would
// let 12 through on each (36), and a read-then-write count would let
// through whatever raced past the read.
func scaleSignupCapCase(t *testing.T, c *cluster) []scaleUser {
	t.Helper()
	replies := make([]reply, scaleSignupTries)
	emails := make([]string, scaleSignupTries)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range scaleSignupTries {
		emails[i] = fmt.Sprintf("scale-%02d@example.test", i)
		wg.Go(func() {
			<-gate
			replies[i] = c.sendTo(c.insts[i%len(c.insts)], "POST", authPath("/register"),
				map[string]string{"email": emails[i], "password": scalePassword})
		})
	}
	close(gate)
	wg.Wait()

	var users []scaleUser
	tally := map[string]int{}
	for i, r := range replies {
		require.NoError(t, r.err, "register %s", emails[i])
		tally[fmt.Sprintf("%d %s", r.status, r.code)]++
		if r.status == http.StatusCreated {
			var body struct {
				User struct {
					ID    uuid.UUID `json:"id"`
					Email string    `json:"email"`
				} `json:"user"`
				tokenPair
			}
			require.NoError(t, json.Unmarshal(r.body, &body))
			require.NotEmpty(t, body.RefreshToken, "registration without email verification returns a token pair")
			users = append(users, scaleUser{ID: body.User.ID, Email: body.User.Email, Pair: body.tokenPair})
		}
	}
	assert.Equal(t, map[string]int{
		"201 ":                     scaleSignupCap,
		"429 SIGNUP_LIMIT_REACHED": scaleSignupTries - scaleSignupCap,
	}, tally, "answers to %d parallel registrations with a cap of %d", scaleSignupTries, scaleSignupCap)

	ctx := context.Background()
	var accounts, counted int
	require.NoError(t, c.pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM auth.users),
		(SELECT coalesce(sum(count), 0) FROM auth.signup_counts)`).Scan(&accounts, &counted))
	assert.Equal(t, scaleSignupCap, accounts, "accounts created")
	assert.Equal(t, scaleSignupCap, counted, "auth.signup_counts")
	for _, in := range c.insts {
		r := c.expect(t, in, http.StatusOK, "", "GET", authPath("/signup-status"), nil)
		assert.JSONEq(t, fmt.Sprintf(`{"open":false,"limit":%d,"remainingToday":0}`, scaleSignupCap), string(r.body), "signup status on %s", in.name)
	}
	require.Len(t, users, scaleSignupCap)
	return users
}

// scaleLockoutCase: 200 parallel wrong passwords for one account, spread
// over the instances, each from an address of its own: exactly 5 are
// evaluated (401 INVALID_CREDENTIALS and a LOGIN_FAILURE each), the other
// 195 are refused at the gate (429 ACCOUNT_LOCKED); then the right
// password is refused on every instance. A counter per instance would
// evaluate up to 5 on each (15); a counter read and then written (the
// CVE-2024-4629 class) lets every attempt that read it before the 5th
// write through.
func scaleLockoutCase(t *testing.T, c *cluster, u scaleUser) {
	replies := make([]reply, scaleBurst)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range scaleBurst {
		wg.Go(func() {
			<-gate
			replies[i] = c.sendTo(c.insts[i%len(c.insts)], "POST", authPath("/login"),
				map[string]string{"email": u.Email, "password": "wrong-" + randomHex(8)})
		})
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	t.Logf("%d wrong passwords answered in %v", scaleBurst, time.Since(start).Round(time.Millisecond))

	tally := map[string]int{}
	evaluatedOn := map[string]int{}
	for _, r := range replies {
		require.NoError(t, r.err)
		tally[fmt.Sprintf("%d %s", r.status, r.code)]++
		if r.code == "INVALID_CREDENTIALS" {
			evaluatedOn[r.inst.name]++
		}
	}
	assert.Equal(t, map[string]int{
		"401 INVALID_CREDENTIALS": scaleMaxFailures,
		"429 ACCOUNT_LOCKED":      scaleBurst - scaleMaxFailures,
	}, tally, "answers to %d parallel wrong passwords", scaleBurst)
	t.Logf("evaluated per instance: %v", evaluatedOn)

	ctx := context.Background()
	var attempts, failures, locks, counted int
	var locked bool
	require.NoError(t, c.pool().QueryRow(ctx, `SELECT
		(SELECT count(*) FROM auth.login_attempts WHERE email = $1 AND NOT successful),
		(SELECT count(*) FROM auth.security_events WHERE user_id = $2 AND event_type = 'LOGIN_FAILURE'),
		(SELECT count(*) FROM auth.security_events WHERE user_id = $2 AND event_type = 'ACCOUNT_LOCKED'),
		(SELECT cardinality(failures) FROM auth.lockouts WHERE email = $1),
		(SELECT locked_until > now() FROM auth.lockouts WHERE email = $1)`, u.Email, u.ID).
		Scan(&attempts, &failures, &locks, &counted, &locked))
	assert.Equal(t, scaleBurst, attempts, "every attempt recorded, evaluated or refused")
	assert.Equal(t, scaleMaxFailures, failures, "LOGIN_FAILURE events: the attempts evaluated")
	assert.Equal(t, 1, locks, "ACCOUNT_LOCKED events")
	assert.Equal(t, scaleMaxFailures, counted, "failures in the counter")
	assert.True(t, locked)

	for _, in := range c.insts {
		r := c.expect(t, in, http.StatusTooManyRequests, "ACCOUNT_LOCKED", "POST", authPath("/login"),
			map[string]string{"email": u.Email, "password": scalePassword})
		var e struct {
			Error struct {
				RemainingSeconds int `json:"remainingSeconds"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(r.body, &e))
		assert.Positive(t, e.Error.RemainingSeconds, "the right password on %s", in.name)
	}
}

// scaleIPLimitCase: MANA_AUTH_IP_RATE=10/h with REDIS_URL: ten requests
// from one client address spread over the instances pass, the eleventh
// is 429 RATE_LIMITED on every instance, while another address still
// passes. Limiters in process memory would each have seen three or four
// of the ten, and let the eleventh through.
func scaleIPLimitCase(t *testing.T, c *cluster, _ scaleUser) {
	ip := c.newIP()
	forgot := func() map[string]string {
		return map[string]string{"email": "nobody-" + randomHex(4) + "@example.test"}
	}
	for i := range scaleIPLimit {
		c.expect(t, c.insts[i%len(c.insts)], http.StatusAccepted, "", "POST", authPath("/forgot-password"), forgot(), withXFF(ip))
	}
	for _, in := range c.insts {
		r := c.expect(t, in, http.StatusTooManyRequests, "RATE_LIMITED", "POST", authPath("/forgot-password"), forgot(), withXFF(ip))
		assert.Contains(t, string(r.body), `"remainingSeconds"`, "on %s", in.name)
		c.expect(t, in, http.StatusAccepted, "", "POST", authPath("/forgot-password"), forgot()) // another address
	}
	ttl, err := c.redis.PTTL(context.Background(), limiterKeyPrefix+ip).Result()
	require.NoError(t, err)
	assert.Positive(t, ttl, "the address's counter lives in Redis, expiring")
}

// scaleRefreshReplayCase: a refresh token spent on A; retried on B within
// the grace window it yields the same child (derived from the token with
// a key derived from the shared signing key: instances with keys of their
// own would disagree and revoke); replayed on C after the window it is
// refused and the whole family revoked, so the child is refused on B.
func scaleRefreshReplayCase(t *testing.T, c *cluster, u scaleUser) {
	a, b, cc := c.insts[0], c.insts[1], c.insts[2]
	refresh := func(in *instance, tok string) reply {
		return c.sendTo(in, "POST", authPath("/refresh"), map[string]string{"refreshToken": tok})
	}
	pairOf := func(r reply) tokenPair {
		var p tokenPair
		require.NoError(t, json.Unmarshal(r.body, &p))
		require.NotEmpty(t, p.RefreshToken)
		return p
	}
	// The server's spent_at lies between these two instants.
	beforeSpend := time.Now()
	r := refresh(a, u.Pair.RefreshToken)
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.status, "refresh on A: %s", r.body)
	afterSpend := time.Now()
	child := pairOf(r)

	r = refresh(b, u.Pair.RefreshToken)
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.status, "the spent token retried on B within the grace window: %s", r.body)
	assert.Equal(t, child.RefreshToken, pairOf(r).RefreshToken, "B hands out the child A created")

	// Replayed on C until the window has passed: inside it C hands out the
	// same child, after it C refuses and revokes.
	// Every answer is checked against when its request was sent and
	// answered, not against when the test saw it, so a slow machine
	// cannot fail it: an accepted replay was sent before the window
	// closed, the refusal was answered after it.
	for {
		sent := time.Now()
		require.Less(t, sent.Sub(afterSpend), scaleRefreshGrace+15*time.Second, "the replay is still accepted long after the grace window")
		r = refresh(cc, u.Pair.RefreshToken)
		require.NoError(t, r.err)
		if r.status == http.StatusOK {
			require.Equal(t, child.RefreshToken, pairOf(r).RefreshToken, "within the window C hands out the same child")
			require.LessOrEqual(t, sent.Sub(afterSpend), scaleRefreshGrace, "a replay accepted after the grace window")
			time.Sleep(500 * time.Millisecond)
			continue
		}
		require.Equal(t, http.StatusUnauthorized, r.status, "replay on C: %s", r.body)
		require.Equal(t, "TOKEN_INVALID", r.code)
		break
	}
	assert.GreaterOrEqual(t, time.Since(beforeSpend), scaleRefreshGrace, "refused before the grace window passed")

	c.expect(t, b, http.StatusUnauthorized, "TOKEN_INVALID", "POST", authPath("/refresh"), map[string]string{"refreshToken": child.RefreshToken})
	c.expect(t, a, http.StatusUnauthorized, "TOKEN_INVALID", "GET", authPath("/sessions"), nil, withBearer(child.AccessToken))

	var reason string
	var reuses int
	require.NoError(t, c.pool().QueryRow(context.Background(), `SELECT
		(SELECT revoke_reason FROM auth.sessions s JOIN auth.refresh_tokens rt ON rt.session_id = s.id
		  WHERE rt.token_hash = sha256(convert_to($1, 'UTF8'))),
		(SELECT count(*) FROM auth.security_events WHERE user_id = $2 AND event_type = 'TOKEN_REUSE_DETECTED')`,
		child.RefreshToken, u.ID).Scan(&reason, &reuses))
	assert.Equal(t, "token_reuse", reason)
	assert.Equal(t, 1, reuses, "TOKEN_REUSE_DETECTED events")
}

// scaleSessionRevokeCase: B has checked (and cached) that session S1 is
// live; S1 is revoked through A; A and C refuse S1's access token at once,
// B within token.MaxLiveTTL. An instance that never asked the database
// again would keep accepting it until the token expires (15 minutes).
func scaleSessionRevokeCase(t *testing.T, c *cluster, u scaleUser) {
	a, b, cc := c.insts[0], c.insts[1], c.insts[2]
	login := func(in *instance) tokenPair {
		r := c.expect(t, in, http.StatusOK, "", "POST", authPath("/login"), map[string]string{"email": u.Email, "password": scalePassword})
		var p tokenPair
		require.NoError(t, json.Unmarshal(r.body, &p))
		return p
	}
	one, two := login(b), login(a)
	r := c.expect(t, b, http.StatusOK, "", "GET", authPath("/sessions"), nil, withBearer(one.AccessToken))
	var list struct {
		Sessions []struct {
			ID      uuid.UUID `json:"id"`
			Current bool      `json:"current"`
		} `json:"sessions"`
	}
	require.NoError(t, json.Unmarshal(r.body, &list))
	i := slices.IndexFunc(list.Sessions, func(s struct {
		ID      uuid.UUID `json:"id"`
		Current bool      `json:"current"`
	}) bool {
		return s.Current
	})
	require.GreaterOrEqual(t, i, 0, "the caller's own session is listed")
	s1 := list.Sessions[i].ID
	c.expect(t, b, http.StatusOK, "", "GET", vaultPrefix+"/status", nil, withBearer(one.AccessToken))

	c.expect(t, a, http.StatusNoContent, "", "DELETE", authPath("/sessions/"+s1.String()), nil, withBearer(two.AccessToken))
	revoked := time.Now()
	c.expect(t, a, http.StatusUnauthorized, "TOKEN_INVALID", "GET", vaultPrefix+"/status", nil, withBearer(one.AccessToken))
	c.expect(t, cc, http.StatusUnauthorized, "TOKEN_INVALID", "GET", authPath("/sessions"), nil, withBearer(one.AccessToken))

	// B cached S1 as live before the revocation, so it may answer from
	// its cache until MaxLiveTTL after that: every request it accepted
	// must have been sent before revoked+MaxLiveTTL (a request's send time
	// precedes B's check, so a slow machine cannot fail this).
	var servedAfter int
	var lastAccepted time.Duration
	for {
		sent := time.Now()
		r := c.sendTo(b, "GET", vaultPrefix+"/status", nil, withBearer(one.AccessToken))
		require.NoError(t, r.err)
		if r.status == http.StatusUnauthorized {
			require.Equal(t, "TOKEN_INVALID", r.code)
			break
		}
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		servedAfter++
		lastAccepted = sent.Sub(revoked)
		require.Less(t, lastAccepted, token.MaxLiveTTL, "B accepted the revoked session longer than its cache time")
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("B refused the revoked session after %v; it answered %d requests from its cache before, the last sent %v after the revocation",
		time.Since(revoked).Round(time.Millisecond), servedAfter, lastAccepted.Round(time.Millisecond))
	c.expect(t, b, http.StatusOK, "", "GET", vaultPrefix+"/status", nil, withBearer(two.AccessToken)) // the other session lives on
}

// scaleMFACase: a factor enrolled through A is confirmed through B (the
// secret sealed under the shared KEK); a login on A asks for the second
// step, and its mfaToken is verified on B; the spent token is refused on
// C, the code replayed with a new login is refused on A, and one recovery
// code sent with one mfaToken to all three instances at once signs in
// exactly once. Instances keeping challenges, used steps or codes of their
// own would accept the token, the code or the recovery code again
// elsewhere.
func scaleMFACase(t *testing.T, c *cluster, u scaleUser) {
	a, b, cc := c.insts[0], c.insts[1], c.insts[2]
	bearer := withBearer(u.Pair.AccessToken)
	c.rechecks.Add(1) // the enrolment re-checks the password
	r := c.expect(t, a, http.StatusOK, "", "POST", mfaPath("/totp/enroll"), map[string]string{"password": scalePassword}, bearer)
	var enr struct {
		Secret string `json:"secret"`
	}
	require.NoError(t, json.Unmarshal(r.body, &enr))
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(enr.Secret)
	require.NoError(t, err)
	step := totpStep(time.Now())
	r = c.expect(t, b, http.StatusOK, "", "POST", mfaPath("/totp/confirm"), map[string]string{"code": totpAt(secret, step)}, bearer)
	var conf struct {
		RecoveryCodes []string `json:"recoveryCodes"`
	}
	require.NoError(t, json.Unmarshal(r.body, &conf))
	require.NotEmpty(t, conf.RecoveryCodes)

	challenge := func(in *instance) string {
		r := c.expect(t, in, http.StatusOK, "", "POST", authPath("/login"), map[string]string{"email": u.Email, "password": scalePassword})
		var ch struct {
			MFARequired bool   `json:"mfaRequired"`
			MFAToken    string `json:"mfaToken"`
		}
		require.NoError(t, json.Unmarshal(r.body, &ch))
		require.True(t, ch.MFARequired, "login on %s: %s", in.name, r.body)
		return ch.MFAToken
	}
	// The next step's code: the confirmation used this one (within the
	// server's one step of skew whatever the clock does meanwhile).
	code := totpAt(secret, step+1)
	tok := challenge(a)
	r = c.expect(t, b, http.StatusOK, "", "POST", mfaPath("/verify"), map[string]string{"mfaToken": tok, "code": code})
	var p tokenPair
	require.NoError(t, json.Unmarshal(r.body, &p))
	require.NotEmpty(t, p.AccessToken)
	c.expect(t, cc, http.StatusUnauthorized, "TOKEN_INVALID", "POST", mfaPath("/verify"), map[string]string{"mfaToken": tok, "code": code})

	tok = challenge(cc)
	c.expect(t, a, http.StatusUnauthorized, "MFA_INVALID_CODE", "POST", mfaPath("/verify"), map[string]string{"mfaToken": tok, "code": code})

	replies := make([]reply, len(c.insts))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, in := range c.insts {
		wg.Go(func() {
			<-gate
			replies[i] = c.sendTo(in, "POST", mfaPath("/verify"), map[string]string{"mfaToken": tok, "recoveryCode": conf.RecoveryCodes[0]})
		})
	}
	close(gate)
	wg.Wait()
	var won int
	for _, r := range replies {
		require.NoError(t, r.err)
		if r.status == http.StatusOK {
			won++
			continue
		}
		assert.Equal(t, http.StatusUnauthorized, r.status, "%s", r)
		assert.Contains(t, []string{"TOKEN_INVALID", "MFA_INVALID_CODE"}, r.code, "%s", r)
	}
	assert.Equal(t, 1, won, "one mfaToken and one recovery code sent to every instance at once: sign-ins %v", replies)
	r = c.expect(t, cc, http.StatusOK, "", "GET", mfaPath("/status"), nil, withBearer(p.AccessToken))
	assert.JSONEq(t, fmt.Sprintf(`{"totp":true,"recoveryCodesLeft":%d}`, len(conf.RecoveryCodes)-1), string(r.body))
}

// scaleAPIKeyCase: a key created through A (apikey's bun store, through
// PgBouncer) is valid on B, which caches the answer; revoked through C,
// it is refused at once by C and A and by B within its cache time
// (apikey.Config.CacheTTL, 5 s).
func scaleAPIKeyCase(t *testing.T, c *cluster, u scaleUser) {
	a, b, cc := c.insts[0], c.insts[1], c.insts[2]
	bearer := withBearer(u.Pair.AccessToken)
	r := c.expect(t, a, http.StatusCreated, "", "POST", "/api/v1/api-keys", map[string]any{"name": "scale-out", "scopes": []string{"read"}}, bearer)
	var created struct {
		Key    string `json:"key"`
		APIKey struct {
			ID uuid.UUID `json:"id"`
		} `json:"apiKey"`
	}
	require.NoError(t, json.Unmarshal(r.body, &created))
	require.NotEmpty(t, created.Key)
	service := withHeader("X-Service-Key", scaleServiceKey)
	validate := func(in *instance) (valid bool, reason string) {
		r := c.expect(t, in, http.StatusOK, "", "POST", "/api/v1/api-keys/validate", map[string]string{"key": created.Key}, service)
		var out struct {
			Valid  bool   `json:"valid"`
			Reason string `json:"reason"`
		}
		require.NoError(t, json.Unmarshal(r.body, &out))
		return out.Valid, out.Reason
	}
	valid, _ := validate(b)
	require.True(t, valid, "the key on B")

	c.expect(t, cc, http.StatusNoContent, "", "DELETE", "/api/v1/api-keys/"+created.APIKey.ID.String(), nil, bearer)
	revoked := time.Now()
	for _, in := range []*instance{cc, a} {
		valid, reason := validate(in)
		assert.False(t, valid, "on %s", in.name)
		assert.Equal(t, "revoked", reason, "on %s", in.name)
	}
	// B may answer from its cache until CacheTTL after the revocation:
	// every request it accepted was sent before then.
	for {
		sent := time.Now()
		valid, reason := validate(b)
		if !valid {
			assert.Equal(t, "revoked", reason)
			break
		}
		require.Less(t, sent.Sub(revoked), 5*time.Second, "B accepted the revoked key longer than its cache time")
		time.Sleep(50 * time.Millisecond)
	}
}

// scalePasskeyCase: a passkey's registration begun on A is verified on
// B; a sign-in begun on B is verified on C; the same assertion replayed
// on A is refused. Challenges kept in an instance's memory would fail
// both verifications; a challenge spent only where it was verified would
// let the replay through.
func scalePasskeyCase(t *testing.T, c *cluster, u scaleUser) {
	a, b, cc := c.insts[0], c.insts[1], c.insts[2]
	bearer := withBearer(u.Pair.AccessToken)
	auth := newE2EAuthenticator(u.ID)
	ceremony := func(r reply) e2eCeremony {
		var cer e2eCeremony
		require.NoError(t, json.Unmarshal(r.body, &cer))
		require.NotEmpty(t, cer.ChallengeID)
		return cer
	}
	reg := ceremony(c.expect(t, a, http.StatusOK, "", "POST", passkeysPath("/register/options"), nil, bearer))
	c.expect(t, b, http.StatusCreated, "", "POST", passkeysPath("/register/verify"),
		map[string]any{"challengeId": reg.ChallengeID, "credential": auth.create(t, reg.Options)}, bearer)

	sign := ceremony(c.expect(t, b, http.StatusOK, "", "POST", passkeysPath("/authenticate/options"), map[string]string{"email": u.Email}))
	assertion := map[string]any{"challengeId": sign.ChallengeID, "credential": auth.get(t, sign.Options)}
	r := c.expect(t, cc, http.StatusOK, "", "POST", passkeysPath("/authenticate/verify"), assertion)
	var p struct {
		tokenPair
		User struct {
			ID uuid.UUID `json:"id"`
		} `json:"user"`
	}
	require.NoError(t, json.Unmarshal(r.body, &p))
	assert.Equal(t, u.ID, p.User.ID)
	c.expect(t, a, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED", "POST", passkeysPath("/authenticate/verify"), assertion)
}

// scalePasskeyLimitCase: passkey sign-in options are limited per client
// address (passkey.OptionsRate, 20 a minute, in Redis with REDIS_URL).
// Thirty requests from one address, ten to each instance at once: twenty
// pass and ten are 429 RATE_LIMITED — plus at most one more for each
// 3 s (a minute over 20) the burst took. Limiters in process memory would
// let all thirty through (ten each, under twenty).
func scalePasskeyLimitCase(t *testing.T, c *cluster, _ scaleUser) {
	limit, period := passkey.OptionsRate.Limit, passkey.OptionsRate.Period
	const n = 30
	ip := c.newIP()
	replies := make([]reply, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			replies[i] = c.sendTo(c.insts[i%len(c.insts)], "POST", passkeysPath("/authenticate/options"), nil, withXFF(ip))
		})
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	took := time.Since(start)
	var passed, limited int
	for _, r := range replies {
		require.NoError(t, r.err)
		switch {
		case r.status == http.StatusOK:
			passed++
		case r.status == http.StatusTooManyRequests && r.code == "RATE_LIMITED":
			limited++
		default:
			t.Errorf("options: %s", r)
		}
	}
	regained := int(took / (period / time.Duration(limit)))
	t.Logf("%d passed, %d limited in %v", passed, limited, took.Round(time.Millisecond))
	assert.GreaterOrEqual(t, passed, limit, "the first %d of one address pass", limit)
	assert.LessOrEqual(t, passed, limit+regained, "passed beyond the limit (%d) and what %v gave back (%d)", limit, took, regained)
	assert.Equal(t, n, passed+limited)
}

// killReport is what the kill case saw, for the invariants.
type killReport struct {
	killed         string
	loginsInFlight int64 // logins in flight to the killed instance when it died
}

// scaleKillCase: workers sign in, refresh, list their sessions and log
// out, round robin over the instances; once requests are in flight to C,
// C is killed with SIGKILL and taken out of the rotation, as a load
// balancer's health check would. Every request to the survivors must
// succeed, before and after; the database is checked afterwards
// (checkInvariants).
func scaleKillCase(t *testing.T, c *cluster, users []scaleUser) killReport {
	victim := c.insts[len(c.insts)-1]
	type failure struct {
		step string
		r    reply
	}
	var (
		mu          sync.Mutex
		failures    []failure
		killed      atomic.Bool
		servedAfter atomic.Int64
		flows       atomic.Int64
	)
	step := func(name string, want int, r reply) bool {
		if r.err == nil && r.status == want {
			if killed.Load() && r.inst != victim {
				servedAfter.Add(1)
			}
			return true
		}
		mu.Lock()
		failures = append(failures, failure{name, r})
		mu.Unlock()
		return false
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				wrong := c.send("POST", authPath("/login"), map[string]string{"email": u.Email, "password": "wrong-" + randomHex(4)})
				if !step("wrong password", http.StatusUnauthorized, wrong) {
					continue
				}
				r := c.send("POST", authPath("/login"), map[string]string{"email": u.Email, "password": scalePassword})
				if !step("login", http.StatusOK, r) {
					continue
				}
				var p tokenPair
				if json.Unmarshal(r.body, &p) != nil {
					step("login body", -1, r)
					continue
				}
				r = c.send("POST", authPath("/refresh"), map[string]string{"refreshToken": p.RefreshToken})
				if !step("refresh", http.StatusOK, r) || json.Unmarshal(r.body, &p) != nil {
					continue
				}
				if !step("sessions", http.StatusOK, c.send("GET", authPath("/sessions"), nil, withBearer(p.AccessToken))) {
					continue
				}
				if step("logout", http.StatusNoContent, c.send("POST", authPath("/logout"),
					map[string]string{"refreshToken": p.RefreshToken}, withBearer(p.AccessToken))) {
					flows.Add(1)
				}
			}
		})
	}

	time.Sleep(1500 * time.Millisecond) // load before the kill
	var inFlight int64
	waitFor(t, 10*time.Second, "requests in flight to "+victim.name, func() bool {
		inFlight = 0
		victim.inflight.Range(func(_, v any) bool { inFlight += v.(*atomic.Int64).Load(); return true })
		return inFlight > 0
	})
	loginsInFlight := victim.flight("POST " + authPath("/login")).Load()
	require.NoError(t, victim.proc.Signal(syscall.SIGKILL))
	victim.down.Store(true)
	killed.Store(true)
	killedAt := time.Now()
	select {
	case <-victim.proc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the killed instance did not exit")
	}
	// Serve on, and make sure the survivors did serve after the kill.
	time.Sleep(1500 * time.Millisecond)
	waitFor(t, 20*time.Second, "requests served by the survivors after the kill", func() bool { return servedAfter.Load() >= 20 })
	close(stop)
	wg.Wait()

	var onVictim, onSurvivors []string
	for _, f := range failures {
		line := f.step + " → " + f.r.String()
		if f.r.inst == victim {
			onVictim = append(onVictim, line)
		} else {
			onSurvivors = append(onSurvivors, line)
		}
	}
	t.Logf("%d complete flows; %s killed with %d requests in flight (%d logins); %d requests failed on it; survivors served %d requests after the kill",
		flows.Load(), victim.name, inFlight, loginsInFlight, len(onVictim), servedAfter.Load())
	assert.Empty(t, onSurvivors, "failed requests on the survivors")
	if len(onVictim) > 0 {
		t.Logf("failed on %s: %s", victim.name, strings.Join(onVictim, "; "))
	}
	for _, in := range c.live() {
		c.expect(t, in, http.StatusOK, "", "GET", "/readyz", nil)
	}
	t.Logf("survivors kept serving; the kill happened %v before the load stopped", time.Since(killedAt).Round(time.Millisecond))
	return killReport{killed: victim.name, loginsInFlight: loginsInFlight}
}

// checkInvariants: after everything above, including the kill, the
// database holds nothing half-written.
func (c *cluster) checkInvariants(t *testing.T, kill killReport) {
	ctx := context.Background()
	count := func(what, q string, args ...any) int {
		t.Helper()
		var n int
		require.NoError(t, c.pool().QueryRow(ctx, q, args...).Scan(&n), what)
		return n
	}
	zero := map[string]string{
		"sessions without a refresh token": `SELECT count(*) FROM auth.sessions s
			WHERE NOT EXISTS (SELECT 1 FROM auth.refresh_tokens rt WHERE rt.session_id = s.id)`,
		"refresh tokens without a session": `SELECT count(*) FROM auth.refresh_tokens rt
			WHERE NOT EXISTS (SELECT 1 FROM auth.sessions s WHERE s.id = rt.session_id)`,
		"spent refresh tokens without their child": `SELECT count(*) FROM auth.refresh_tokens p
			WHERE p.spent_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM auth.refresh_tokens ch WHERE ch.parent_id = p.id)`,
		"refresh tokens with two children": `SELECT count(*) FROM (SELECT parent_id FROM auth.refresh_tokens
			WHERE parent_id IS NOT NULL GROUP BY parent_id HAVING count(*) > 1) x`,
		"children of unspent tokens": `SELECT count(*) FROM auth.refresh_tokens ch
			JOIN auth.refresh_tokens p ON p.id = ch.parent_id WHERE p.spent_at IS NULL`,
		"lockout counters above the maximum": `SELECT count(*) FROM auth.lockouts WHERE cardinality(failures) > ` +
			strconv.Itoa(scaleMaxFailures),
		"locks without the failures that set them": `SELECT count(*) FROM auth.lockouts
			WHERE locked_until > now() AND cardinality(failures) < ` + strconv.Itoa(scaleMaxFailures),
	}
	for what, q := range zero {
		assert.Zero(t, count(what, q), what)
	}

	// What commits together is found together.
	pairs := []struct{ what, a, b string }{
		{"sessions = registrations + successful sign-ins (the session and the success commit together); the password re-checks succeed without a session",
			`SELECT count(*) + ` + strconv.FormatInt(c.rechecks.Load(), 10) + ` FROM auth.sessions`,
			`SELECT (SELECT count(*) FROM auth.users) + (SELECT count(*) FROM auth.login_attempts WHERE successful)`},
		{"successful attempts = LOGIN_SUCCESS events",
			`SELECT count(*) FROM auth.login_attempts WHERE successful`,
			`SELECT count(*) FROM auth.security_events WHERE event_type = 'LOGIN_SUCCESS'`},
		{"sessions logged out = LOGOUT events",
			`SELECT count(*) FROM auth.sessions WHERE revoke_reason = 'logout'`,
			`SELECT count(*) FROM auth.security_events WHERE event_type = 'LOGOUT'`},
		{"sessions revoked for reuse = TOKEN_REUSE_DETECTED events",
			`SELECT count(*) FROM auth.sessions WHERE revoke_reason = 'token_reuse'`,
			`SELECT count(*) FROM auth.security_events WHERE event_type = 'TOKEN_REUSE_DETECTED'`},
		{"sessions revoked by the user = SESSION_REVOKED events",
			`SELECT count(*) FROM auth.sessions WHERE revoke_reason = 'revoked'`,
			`SELECT count(*) FROM auth.security_events WHERE event_type = 'SESSION_REVOKED'`},
	}
	for _, p := range pairs {
		assert.Equal(t, count(p.what, p.a), count(p.what, p.b), p.what)
	}

	// Every failure in a lockout counter is an attempt recorded as failed,
	// except admissions whose check died with the killed instance: those
	// stay counted (the gate errs on the side of the lock) until the window
	// passes, and there can be no more of them than logins were in flight
	// to it.
	orphans := count("orphan admissions", `SELECT count(*) FROM auth.lockouts l, unnest(l.failures) f
		WHERE NOT EXISTS (SELECT 1 FROM auth.login_attempts a
		                  WHERE a.email = l.email AND a.attempted_at = f AND NOT a.successful)`)
	assert.LessOrEqual(t, int64(orphans), kill.loginsInFlight,
		"failures counted without a recorded attempt, beyond the logins in flight to %s when it was killed", kill.killed)
	t.Logf("lockout admissions left by the kill: %d (logins in flight then: %d)", orphans, kill.loginsInFlight)
}

// checkBouncer: the runtime traffic went through PgBouncer in transaction
// mode, more clients than server connections.
func (c *cluster) checkBouncer(t *testing.T) {
	pools := c.bouncer.Show(t, "POOLS")
	require.NotEmpty(t, pools)
	for _, p := range pools {
		assert.Equal(t, "transaction", p["pool_mode"], "pool %v", p)
	}
	stats := c.bouncer.Show(t, "STATS")
	require.Len(t, stats, 1)
	xacts, err := strconv.Atoi(stats[0]["total_xact_count"])
	require.NoError(t, err)
	assert.Greater(t, xacts, 1000, "transactions through the bouncer")
	clients, servers := len(c.bouncer.Show(t, "CLIENTS")), len(c.bouncer.Show(t, "SERVERS"))
	t.Logf("PgBouncer %s: %d transactions, %s queries; %d client and %d server connections now",
		c.bouncer.Version, xacts, stats[0]["total_query_count"], clients, servers)
	// The survivors' pools grew to their maximum in the burst of 200.
	assert.Greater(t, clients, servers, "clients sharing the server connections")
}

// stopSurvivors: SIGTERM ends each survivor gracefully, and none logged an
// error (a 5xx) during the whole test.
func (c *cluster) stopSurvivors(t *testing.T) {
	for _, in := range c.live() {
		require.NoError(t, in.proc.Signal(syscall.SIGTERM))
	}
	for _, in := range c.live() {
		assert.NoError(t, in.proc.Wait(t, 30*time.Second), "instance %s exit status", in.name)
		out := in.proc.Output()
		assert.Contains(t, out, `"msg":"stopped"`, "instance %s", in.name)
		for _, l := range logLines(out) {
			if l["level"] == "ERROR" {
				t.Errorf("instance %s logged an error: %v", in.name, l)
			}
		}
	}
}
