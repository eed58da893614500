package manaauth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// registerForToken registers email and returns the token of its
// verification mail (not redeemed).
func registerForToken(t testing.TB, f *fixture, email string) string {
	t.Helper()
	st, body, _ := f.call(t, "POST", "/register", map[string]any{"email": email, "password": strongPassword}, nil)
	require.Equal(t, http.StatusCreated, st, "register %s: %v", email, body)
	return f.mailToken(t, email, "verify-email")
}

func verify(t testing.TB, f *fixture, token string) (int, map[string]any) {
	t.Helper()
	st, body, _ := f.call(t, "POST", "/verify-email", map[string]any{"token": token}, nil)
	return st, body
}

// Guards: verification is single use and really verifies. A second POST
// of the same link must fail (TOKEN_INVALID): a replayable token would let
// whoever sees the link later (logs, history) use it again.
func TestVerifyEmailSucceedsOnceThenTokenInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	tok := registerForToken(t, f, "alice@x.com")
	st, body := verify(t, f, tok)
	require.Equal(t, http.StatusOK, st, "%v", body)
	u := userOf(t, body)
	assert.Equal(t, true, u["emailVerified"])
	assert.Equal(t, "alice@x.com", u["email"])
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.users WHERE email = 'alice@x.com' AND email_verified_at IS NOT NULL`))
	f.login(t, "alice@x.com", strongPassword)

	st, body = verify(t, f, tok)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")

	for name, tc := range map[string]string{
		"unknown token":  "bm90LWEtcmVhbC10b2tlbi1idXQtd2VsbC1mb3JtZWQtMDAwMDAw",
		"truncated":      tok[:20],
		"absurdly long":  string(make([]byte, 300)),
		"one char wrong": flipLast(tok),
	} {
		st, body = verify(t, f, tc)
		assert.Equal(t, http.StatusUnauthorized, st, "%s: %v", name, body)
		assert.Equal(t, "TOKEN_INVALID", errCode(body), "%s", name)
	}
	st, body, _ = f.call(t, "POST", "/verify-email", map[string]any{}, nil)
	requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	assert.Contains(t, errFields(body), "token")
}

// Guards: the 24 h lifetime of verification links — TOKEN_EXPIRED after
// it (not TOKEN_INVALID, so the client can offer "send a new link"), and
// still valid just before it (a TTL mixed up with the 1 h reset TTL would
// fail the second half).
func TestVerifyEmailTokenExpiresAfter24Hours(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	early := registerForToken(t, f, "early@x.com")
	late := registerForToken(t, f, "late@x.com")

	f.clock.Advance(23*time.Hour + 59*time.Minute)
	st, body := verify(t, f, early)
	require.Equal(t, http.StatusOK, st, "a minute before expiry: %v", body)

	f.clock.Advance(time.Hour + time.Minute) // 25 h after signup
	st, body = verify(t, f, late)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_EXPIRED")
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.users WHERE email = 'late@x.com' AND email_verified_at IS NULL`),
		"an expired link verifies nothing")
}

// Guards: "a new one voids the old". After POST /resend-verification only
// the newest link works; otherwise every link ever mailed stays live.
func TestResendVerificationVoidsOldToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	old := registerForToken(t, f, "alice@x.com")
	st, body, _ := f.call(t, "POST", "/resend-verification", map[string]any{"email": " ALICE@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	fresh := f.mailToken(t, "alice@x.com", "verify-email")
	require.NotEqual(t, old, fresh)

	st, body = verify(t, f, old)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	st, body = verify(t, f, fresh)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, true, userOf(t, body)["emailVerified"])
}

// Guards: no account enumeration through resend-verification: unknown and
// already verified addresses get the same 202 and no mail (a mail to a
// verified user would be spam on demand; a different answer would tell
// who has an account). A malformed address is still a 400.
func TestResendVerificationAnswersAlikeAndMailsOnlyUnverified(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "verified@x.com", strongPassword)
	_ = registerForToken(t, f, "pending@x.com")

	var bodies []map[string]any
	for _, email := range []string{"nobody@x.com", "verified@x.com", "pending@x.com"} {
		st, body, _ := f.call(t, "POST", "/resend-verification", map[string]any{"email": email}, nil)
		require.Equal(t, http.StatusAccepted, st, "%s: %v", email, body)
		bodies = append(bodies, body)
	}
	assert.Equal(t, bodies[0], bodies[1], "unknown vs verified")
	assert.Equal(t, bodies[0], bodies[2], "unknown vs pending")
	f.mailToken(t, "pending@x.com", "verify-email")
	f.settleMail(t)
	assert.Equal(t, 0, f.mailsTo("nobody@x.com"), "mails to an unknown address")
	assert.Equal(t, 1, f.mailsTo("verified@x.com"), "mails to a verified address (the signup mail only)")
	assert.Equal(t, 2, f.mailsTo("pending@x.com"), "signup mail and the resent one")

	st, body, _ := f.call(t, "POST", "/resend-verification", map[string]any{"email": "not-an-address"}, nil)
	requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	assert.Contains(t, errFields(body), "email")
}

// Guards: single use under concurrency — one conditional UPDATE, not a
// read-then-write. 20 parallel redemptions of one token behind a start
// barrier: exactly one 200, every other answer 401 TOKEN_INVALID, no 5xx.
// A SELECT-then-UPDATE would let several through (or deadlock into 500s).
func TestVerifyEmailParallelRedemptionsExactlyOneWins(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	tok := registerForToken(t, f, "alice@x.com")
	const n = 20
	type result struct {
		st   int
		code string
		err  error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			st, body, err := f.try(t.Context(), "POST", "/verify-email", map[string]any{"token": tok}, nil)
			results[i] = result{st, errCode(body), err}
		})
	}
	close(start)
	wg.Wait()
	ok, invalid := 0, 0
	for i, r := range results {
		require.NoError(t, r.err, "redemption %d", i)
		switch {
		case r.st == http.StatusOK:
			ok++
		case r.st == http.StatusUnauthorized && r.code == "TOKEN_INVALID":
			invalid++
		default:
			t.Errorf("redemption %d: got %d %q, want 200 or 401 TOKEN_INVALID", i, r.st, r.code)
		}
	}
	assert.Equal(t, 1, ok, "successful redemptions")
	assert.Equal(t, n-1, invalid, "refused redemptions")
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'EMAIL_VERIFIED'`),
		"the verification happened once")
}

// Guards: tokens at rest. auth.one_time_tokens holds sha256(token) and the
// plaintext appears in no column of any auth table (a database dump must
// not hand out live links); not the decoded token bytes either.
func TestOneTimeTokensAreStoredHashedOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	verifyTok := registerForToken(t, f, "alice@x.com")
	st, body, _ := f.call(t, "POST", "/forgot-password", map[string]any{"email": "alice@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	resetTok := f.mailToken(t, "alice@x.com", "reset-password")

	for purpose, tok := range map[string]string{"verify_email": verifyTok, "reset_password": resetTok} {
		var stored []byte
		require.NoError(t, f.db.Owner.QueryRow(bg, `SELECT token_hash FROM auth.one_time_tokens WHERE purpose = $1`, purpose).Scan(&stored))
		want := sha256.Sum256([]byte(tok))
		assert.Equal(t, want[:], stored, "%s: token_hash is sha256 of the mailed token", purpose)
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		require.NoError(t, err)
		assert.NotEqual(t, raw, stored, "%s: the raw token bytes are not stored", purpose)

		rows, err := f.db.Owner.Query(bg, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'auth' AND table_type = 'BASE TABLE'`)
		require.NoError(t, err)
		var tables []string
		for rows.Next() {
			var name string
			require.NoError(t, rows.Scan(&name))
			tables = append(tables, name)
		}
		require.NoError(t, rows.Err())
		require.Contains(t, tables, "one_time_tokens")
		for _, table := range tables {
			hits := f.ownerInt(t, `SELECT count(*) FROM auth.`+table+` t WHERE strpos(t::text, $1) > 0 OR strpos(t::text, encode($2, 'hex')) > 0`, tok, raw)
			assert.Zero(t, hits, "%s token found in plain in auth.%s", purpose, table)
		}
	}
}

// Guards: purpose binding. A reset token is not a verification token and
// vice versa; the refused attempt must not burn the token for its real
// purpose. Without the binding, a link meant for one action performs
// another.
func TestOneTimeTokensArePurposeBound(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	verifyTok := registerForToken(t, f, "alice@x.com")
	st, body, _ := f.call(t, "POST", "/forgot-password", map[string]any{"email": "alice@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	resetTok := f.mailToken(t, "alice@x.com", "reset-password")

	st, body = verify(t, f, resetTok)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	assert.Equal(t, 1, f.ownerInt(t, `SELECT count(*) FROM auth.users WHERE email_verified_at IS NULL`), "still unverified")
	st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": verifyTok, "newPassword": "brand-new-secret-77"}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")

	st, body = verify(t, f, verifyTok)
	require.Equal(t, http.StatusOK, st, "the verification token still works for its purpose: %v", body)
	st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": resetTok, "newPassword": "brand-new-secret-77"}, nil)
	require.Equal(t, http.StatusOK, st, "the reset token still works for its purpose: %v", body)
}

// Guards: forgot-password enumeration. Known and unknown addresses get the
// same 202 body; only the known one gets a mail, and its link is built
// from the configured base URL.
func TestForgotPasswordAnswersAlikeAndMailsOnlyKnown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	st, known, _ := f.call(t, "POST", "/forgot-password", map[string]any{"email": "Alice@X.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", known)
	st, unknown, _ := f.call(t, "POST", "/forgot-password", map[string]any{"email": "nobody@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", unknown)
	assert.Equal(t, known, unknown)

	m := f.smtp.WaitFor(t, "alice@x.com", mailWait)
	assert.Contains(t, m.Text, "https://app.test.example/auth/reset-password?token=")
	f.settleMail(t)
	assert.Equal(t, 0, f.mailsTo("nobody@x.com"))

	st, body, _ := f.call(t, "POST", "/forgot-password", map[string]any{}, nil)
	requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	assert.Contains(t, errFields(body), "email")
}

// Guards: what a completed reset must do — the new password works and the
// old does not; EVERY session is revoked (a thief holding a refresh token
// is cut off, which is the point of a reset); the link is single use; a
// newer reset mail voids an older link.
func TestResetPasswordSwitchesPasswordAndRevokesAllSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	_, refreshA := f.login(t, "alice@x.com", strongPassword)
	_, refreshB := f.login(t, "alice@x.com", strongPassword)

	st, body, _ := f.call(t, "POST", "/forgot-password", map[string]any{"email": "alice@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	older := f.mailToken(t, "alice@x.com", "reset-password")
	st, body, _ = f.call(t, "POST", "/forgot-password", map[string]any{"email": "alice@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	tok := f.mailToken(t, "alice@x.com", "reset-password")
	st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": older, "newPassword": "brand-new-secret-77"}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")

	const newPassword = "brand-new-secret-77"
	st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": tok, "newPassword": newPassword}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)

	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": "alice@x.com", "password": strongPassword}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	f.login(t, "alice@x.com", newPassword)
	for name, r := range map[string]string{"session A": refreshA, "session B": refreshB} {
		st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": r}, nil)
		assert.Equal(t, http.StatusUnauthorized, st, "%s: %v", name, body)
		assert.Equal(t, "TOKEN_INVALID", errCode(body), "%s", name)
	}
	st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": tok, "newPassword": "yet-another-secret-88"}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	f.login(t, "alice@x.com", newPassword)
}

// Guards: a completed reset lifts the lockout (design.md: an attacker who
// knows only the address can lock its owner out for one window at most).
// Without it the owner, having just proven control of the mailbox, still
// gets 429 for 30 minutes.
func TestResetPasswordClearsLockout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	for i := range 5 {
		st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": "alice@x.com", "password": "wrong-guess-" + string(rune('a'+i))}, nil)
		requireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	}
	st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": "alice@x.com", "password": strongPassword}, nil)
	requireError(t, st, body, http.StatusTooManyRequests, "ACCOUNT_LOCKED")

	st, body, _ = f.call(t, "POST", "/forgot-password", map[string]any{"email": "alice@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	tok := f.mailToken(t, "alice@x.com", "reset-password")
	st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": tok, "newPassword": "brand-new-secret-77"}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	f.login(t, "alice@x.com", "brand-new-secret-77")
}

// Guards: the 1 h lifetime of reset links: TOKEN_EXPIRED after 61 minutes,
// still fine after 59 (a reset link living 24 h like a verification link
// would fail the first half).
func TestResetPasswordTokenExpiresAfterOneHour(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "early@x.com", strongPassword)
	f.signUp(t, "late@x.com", strongPassword)
	for _, email := range []string{"early@x.com", "late@x.com"} {
		st, body, _ := f.call(t, "POST", "/forgot-password", map[string]any{"email": email}, nil)
		require.Equal(t, http.StatusAccepted, st, "%v", body)
	}
	early := f.mailToken(t, "early@x.com", "reset-password")
	late := f.mailToken(t, "late@x.com", "reset-password")

	f.clock.Advance(59 * time.Minute)
	st, body, _ := f.call(t, "POST", "/reset-password", map[string]any{"token": early, "newPassword": "brand-new-secret-77"}, nil)
	require.Equal(t, http.StatusOK, st, "59 minutes: %v", body)
	f.clock.Advance(2 * time.Minute)
	st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": late, "newPassword": "brand-new-secret-77"}, nil)
	requireError(t, st, body, http.StatusUnauthorized, "TOKEN_EXPIRED")
	f.login(t, "late@x.com", strongPassword)
}

// Guards: a refused new password does not spend the link. If the token
// were spent before the policy check, a user who picks "password123" would
// have to request a new mail; the policy must also apply here (a reset is
// the easiest way around a register-only policy).
func TestResetPasswordWeakOrMissingLeavesTokenUsable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	st, body, _ := f.call(t, "POST", "/forgot-password", map[string]any{"email": "alice@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	tok := f.mailToken(t, "alice@x.com", "reset-password")

	for _, tc := range []struct{ password, reason string }{
		{"short", "too_short"},
		{"password123", "common"},
		{"alice-is-great-2024", "contains_email"},
	} {
		st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": tok, "newPassword": tc.password}, nil)
		requireError(t, st, body, http.StatusBadRequest, "WEAK_PASSWORD")
		assert.Equal(t, tc.reason, errDetails(body)["reason"], "password %q", tc.password)
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"newPassword": "brand-new-secret-77"}, "token"},
		{map[string]any{"token": tok}, "newPassword"},
	} {
		st, body, _ = f.call(t, "POST", "/reset-password", tc.body, nil)
		requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
		assert.Contains(t, errFields(body), tc.field, "input %v", tc.body)
	}
	f.login(t, "alice@x.com", strongPassword)

	st, body, _ = f.call(t, "POST", "/reset-password", map[string]any{"token": tok, "newPassword": "brand-new-secret-77"}, nil)
	require.Equal(t, http.StatusOK, st, "the link survived the refused passwords: %v", body)
	f.login(t, "alice@x.com", "brand-new-secret-77")
}

// Guards: a reset link is spent by one conditional UPDATE even though the
// new password is hashed inside the transaction: of 10 parallel resets
// with different passwords exactly one wins, the rest get 401
// TOKEN_INVALID (no 5xx), and the winner's password is the one that
// works. A check-then-update would let several run, the last write
// silently choosing the password.
func TestResetPasswordParallelRedemptionsExactlyOneWins(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	f.signUp(t, "alice@x.com", strongPassword)
	st, body, _ := f.call(t, "POST", "/forgot-password", map[string]any{"email": "alice@x.com"}, nil)
	require.Equal(t, http.StatusAccepted, st, "%v", body)
	tok := f.mailToken(t, "alice@x.com", "reset-password")

	const n = 10
	sts := make([]int, n)
	codes := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			var body map[string]any
			sts[i], body, errs[i] = f.try(t.Context(), "POST", "/reset-password",
				map[string]any{"token": tok, "newPassword": fmt.Sprintf("parallel-secret-%02d", i)}, nil)
			codes[i] = errCode(body)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i := range n {
		require.NoError(t, errs[i], "reset %d", i)
		switch {
		case sts[i] == http.StatusOK:
			require.Equal(t, -1, winner, "resets %d and %d both succeeded", winner, i)
			winner = i
		case sts[i] != http.StatusUnauthorized || codes[i] != "TOKEN_INVALID":
			t.Errorf("reset %d: got %d %q, want 200 or 401 TOKEN_INVALID", i, sts[i], codes[i])
		}
	}
	require.NotEqual(t, -1, winner, "no reset succeeded")
	f.login(t, "alice@x.com", fmt.Sprintf("parallel-secret-%02d", winner))
}
