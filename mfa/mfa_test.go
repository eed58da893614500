package mfa_test

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/mfa"
)

// TestIndependentTOTP: the tests' own TOTP is RFC 6238's (appendix B,
// SHA-1, cut to 6 digits), so a code the service accepts is a code an
// authenticator app computes.
func TestIndependentTOTP(t *testing.T) {
	secret := []byte("12345678901234567890")
	for unix, want := range map[int64]string{59: "287082", 1111111109: "081804", 1234567890: "005924", 20000000000: "353130"} {
		assert.Equal(t, want, rfc6238(secret, time.Unix(unix, 0)), "T=%d", unix)
	}
}

// TestEnrollConfirmSignIn walks api.md's flow: enroll → confirm with a
// code computed by the test → login answers mfaRequired without tokens →
// verify → tokens, a session of method mfa, the events and the notice.
func TestEnrollConfirmSignIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.signUp(t, "ada@example.com")
	on, left := f.status(t, u)
	assert.False(t, on)
	assert.Zero(t, left)

	body := f.enroll(t, u)
	assert.Len(t, u.secret, mfa.SecretSize, "160-bit secret")
	// The otpauth URL carries the same secret and the account; the QR code
	// is a PNG of QRSize pixels.
	link, err := url.Parse(body["otpauthUrl"].(string))
	require.NoError(t, err)
	assert.Equal(t, "otpauth", link.Scheme)
	assert.Equal(t, "totp", link.Host)
	assert.Equal(t, body["secret"], link.Query().Get("secret"))
	assert.Equal(t, "6", link.Query().Get("digits"))
	assert.Equal(t, "30", link.Query().Get("period"))
	assert.Equal(t, "SHA1", link.Query().Get("algorithm"))
	assert.Contains(t, link.Path, "ada@example.com")
	raw, err := base64.StdEncoding.DecodeString(body["qrPng"].(string))
	require.NoError(t, err, "qrPng is standard base64")
	img, err := png.Decode(bytes.NewReader(raw))
	require.NoError(t, err, "qrPng is a PNG")
	assert.Equal(t, mfa.QRSize, img.Bounds().Dx())

	// Pending: the login does not ask for it yet, and status says off.
	st, lb, _ := f.Call(t, "POST", authtest.AuthPrefix+"/login", map[string]any{"email": u.email, "password": password}, nil)
	require.Equal(t, http.StatusOK, st)
	assert.NotEmpty(t, lb["accessToken"], "a pending factor does not guard the login")
	on, _ = f.status(t, u)
	assert.False(t, on)

	f.confirm(t, u)
	seen := map[string]bool{}
	for _, c := range u.recovery {
		assert.Regexp(t, `^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`, c)
		assert.False(t, seen[c], "repeated recovery code")
		seen[c] = true
	}
	on, left = f.status(t, u)
	assert.True(t, on)
	assert.Equal(t, 10, left)
	assert.Contains(t, f.waitMail(t, u.email, "Two-step sign-in is on"), "authenticator app")

	// The confirm code's step counts as used: the next step signs in.
	f.Clock.Advance(30 * time.Second)
	tok := f.challenge(t, u)
	st, vb, resp := f.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
	require.Equal(t, http.StatusOK, st, "%v", vb)
	assert.NotEmpty(t, vb["accessToken"])
	assert.NotEmpty(t, vb["refreshToken"])
	assert.Equal(t, "Bearer", vb["tokenType"])
	assert.Equal(t, u.email, authtest.UserOf(t, vb)["email"])
	var cookie bool
	for _, c := range resp.Cookies() {
		cookie = cookie || c.Name == "mana_session" && c.Value != ""
	}
	assert.True(t, cookie, "verify sets the session cookie like /login")

	// The new session is of method mfa; its token works on the live routes.
	st, sb, _ := f.Call(t, "GET", authtest.AuthPrefix+"/sessions", nil, authtest.Bearer(vb["accessToken"].(string)))
	require.Equal(t, http.StatusOK, st, "%v", sb)
	sessions := sb["sessions"].([]any)
	assert.Equal(t, "mfa", sessions[0].(map[string]any)["method"])

	assert.Subset(t, f.events(t, u), []string{"MFA_ENABLED", "MFA_REQUIRED", "LOGIN_SUCCESS"})
	var method string
	require.NoError(t, f.DB.Owner.QueryRow(bg, `SELECT method FROM auth.login_attempts WHERE email = $1 AND successful
		ORDER BY id DESC LIMIT 1`, u.email).Scan(&method))
	assert.Equal(t, "mfa", method)
	failures, _ := f.lockout(t, u.email)
	assert.Zero(t, failures)
}

// TestCodeAcceptedOnce: a code that signed in is refused for the next
// sign-in within its step (and a code of an earlier step too), and counts
// as a wrong code. Without the last-step check the replay would sign in.
func TestCodeAcceptedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "replay@example.com")
	c := rfc6238(u.secret, f.Clock.Now())
	st, body, _ := f.verify(t, f.challenge(t, u), code(c))
	require.Equal(t, http.StatusOK, st, "%v", body)

	st, body, _ = f.verify(t, f.challenge(t, u), code(c))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	st, body, _ = f.verify(t, f.challenge(t, u), code(rfc6238(u.secret, f.Clock.Now().Add(-30*time.Second))))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	failures, _ := f.lockout(t, u.email)
	assert.Equal(t, 2, failures, "a replayed code counts like a wrong one")

	// Skew: the next step's code is accepted now, and then the current
	// step's is not (it is not later than the last one used).
	next := rfc6238(u.secret, f.Clock.Now().Add(30*time.Second))
	st, body, _ = f.verify(t, f.challenge(t, u), code(next))
	require.Equal(t, http.StatusOK, st, "%v", body)
	failures, _ = f.lockout(t, u.email)
	assert.Zero(t, failures, "a success clears the failures")
	// Two steps away is refused.
	f.Clock.Advance(2 * time.Minute)
	st, body, _ = f.verify(t, f.challenge(t, u), code(rfc6238(u.secret, f.Clock.Now().Add(-time.Minute))))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
}

// TestParallelUseOfOneCode: of many sign-ins racing with one code, exactly
// one gets tokens — the conditional UPDATE of the last step. Read then
// write would let several through.
func TestParallelUseOfOneCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "race@example.com")
	const n = 4 // within the lockout budget: every loser counts a failure
	toks := make([]string, n)
	for i := range toks {
		toks[i] = f.challenge(t, u)
	}
	c := rfc6238(u.secret, f.Clock.Now())
	start := make(chan struct{})
	var wg sync.WaitGroup
	statuses := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i], _, errs[i] = f.Try(bg, "POST", Prefix+"/verify", map[string]any{"mfaToken": toks[i], "code": c}, nil)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i := range n {
		require.NoError(t, errs[i])
		if statuses[i] == http.StatusOK {
			ok++
		} else {
			assert.Equal(t, http.StatusUnauthorized, statuses[i])
		}
	}
	assert.Equal(t, 1, ok, "statuses %v", statuses)
}

// TestRecoveryCode: a recovery code signs in once, in any spelling; the
// second use is refused; status counts down; the event and the notice.
func TestRecoveryCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "rec@example.com")
	rc := u.recovery[3]
	st, body, _ := f.verify(t, f.challenge(t, u), recovery(strings.ToLower(strings.ReplaceAll(rc, "-", " "))))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.NotEmpty(t, body["accessToken"])
	_, left := f.status(t, u)
	assert.Equal(t, 9, left)
	assert.Contains(t, f.events(t, u), "MFA_RECOVERY_CODE_USED")
	assert.Contains(t, f.waitMail(t, u.email, "A recovery code was used"), "9 recovery codes are left")

	st, body, _ = f.verify(t, f.challenge(t, u), recovery(rc))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	st, body, _ = f.verify(t, f.challenge(t, u), recovery("ZZZZ-ZZZZ-ZZZZ"))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	failures, _ := f.lockout(t, u.email)
	assert.Equal(t, 2, failures, "a spent or wrong recovery code counts toward the lock")
	// Another user's code is not this user's.
	other := f.enabled(t, "other@example.com")
	st, body, _ = f.verify(t, f.challenge(t, u), recovery(other.recovery[0]))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	_, left = f.status(t, other)
	assert.Equal(t, 10, left)
}

// TestParallelUseOfOneRecoveryCode: one recovery code, many sign-ins at
// once: exactly one succeeds.
func TestParallelUseOfOneRecoveryCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "rrace@example.com")
	const n = 4
	toks := make([]string, n)
	for i := range toks {
		toks[i] = f.challenge(t, u)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i], _, _ = f.Try(bg, "POST", Prefix+"/verify", map[string]any{"mfaToken": toks[i], "recoveryCode": u.recovery[0]}, nil)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			ok++
		}
	}
	assert.Equal(t, 1, ok, "statuses %v", statuses)
	_, left := f.status(t, u)
	assert.Equal(t, 9, left)
}

// TestWrongCodesLockLikePasswords: five wrong codes lock the account like
// five wrong passwords — the right code and then the right password answer
// ACCOUNT_LOCKED — and wrong passwords and wrong codes share one budget.
func TestWrongCodesLockLikePasswords(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "lock@example.com")
	tok := f.challenge(t, u)
	for i := range 5 {
		st, body, _ := f.verify(t, tok, code("000000"))
		authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
		failures, _ := f.lockout(t, u.email)
		assert.Equal(t, i+1, failures, "wrong code %d", i+1)
	}
	_, locked := f.lockout(t, u.email)
	assert.True(t, locked)
	st, body, resp := f.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
	authtest.RequireError(t, st, body, http.StatusTooManyRequests, "ACCOUNT_LOCKED")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	st, body, _ = f.Call(t, "POST", authtest.AuthPrefix+"/login", map[string]any{"email": u.email, "password": password}, nil)
	authtest.RequireError(t, st, body, http.StatusTooManyRequests, "ACCOUNT_LOCKED")
	assert.Contains(t, f.events(t, u), "ACCOUNT_LOCKED")

	// One budget: after the lock ends, 3 wrong passwords and 2 wrong codes
	// lock again.
	f.Clock.Advance(31 * time.Minute)
	v := f.enabled(t, "budget@example.com")
	for range 3 {
		st, body, _ := f.Call(t, "POST", authtest.AuthPrefix+"/login", map[string]any{"email": v.email, "password": "wrong-password-123"}, nil)
		authtest.RequireError(t, st, body, http.StatusUnauthorized, "INVALID_CREDENTIALS")
	}
	tok = f.challenge(t, v) // the right password clears nothing while a factor is asked for
	failures, _ := f.lockout(t, v.email)
	assert.Equal(t, 3, failures)
	for range 2 {
		st, body, _ := f.verify(t, tok, code("111111"))
		authtest.RequireError(t, st, body, http.StatusUnauthorized, "MFA_INVALID_CODE")
	}
	st, body, _ = f.Call(t, "POST", authtest.AuthPrefix+"/login", map[string]any{"email": v.email, "password": password}, nil)
	authtest.RequireError(t, st, body, http.StatusTooManyRequests, "ACCOUNT_LOCKED")
}

// TestMFATokenSingleUseAndExpiry: an mfaToken works once and for 5
// minutes; an unknown or malformed one is refused; none of this counts
// toward the lock (no code was checked).
func TestMFATokenSingleUseAndExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "tok@example.com")
	tok := f.challenge(t, u)
	st, body, _ := f.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
	require.Equal(t, http.StatusOK, st, "%v", body)
	f.Clock.Advance(30 * time.Second)
	st, body, _ = f.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	st, body, _ = f.verify(t, tok, recovery(u.recovery[0]))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")

	tok = f.challenge(t, u)
	f.Clock.Advance(mfa.ChallengeTTL + time.Second)
	st, body, _ = f.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "TOKEN_EXPIRED")

	// Just inside the lifetime works.
	tok = f.challenge(t, u)
	f.Clock.Advance(mfa.ChallengeTTL - time.Second)
	st, body, _ = f.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
	require.Equal(t, http.StatusOK, st, "%v", body)

	for _, bad := range []string{authtest.FlipLast(tok), "short", strings.Repeat("x", 200), "not a token at all!!!!!!"} {
		st, body, _ = f.verify(t, bad, code("123456"))
		authtest.RequireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	}
	failures, _ := f.lockout(t, u.email)
	assert.Zero(t, failures)
	assert.Zero(t, f.OwnerInt(t, `SELECT count(*) FROM auth.mfa_challenges WHERE token_hash = $1`, []byte(tok)),
		"the token itself is never stored")
}

// TestVerifyValidation: the body's shape is checked before anything else.
func TestVerifyValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	for name, c := range map[string]struct {
		body  any
		field string
	}{
		"no token":   {map[string]any{"code": "123456"}, "mfaToken"},
		"no code":    {map[string]any{"mfaToken": "abc"}, "code"},
		"both":       {map[string]any{"mfaToken": "abc", "code": "123456", "recoveryCode": "ZZZZ-ZZZZ-ZZZZ"}, "recoveryCode"},
		"short code": {map[string]any{"mfaToken": "abc", "code": "12345"}, "code"},
		"bad rc":     {map[string]any{"mfaToken": "abc", "recoveryCode": "UUUU"}, "recoveryCode"},
	} {
		st, body, _ := f.Call(t, "POST", Prefix+"/verify", c.body, nil)
		authtest.RequireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
		assert.Contains(t, authtest.ErrFields(body), c.field, name)
	}
	st, body, _ := f.Call(t, "POST", Prefix+"/verify", nil, nil)
	authtest.RequireError(t, st, body, http.StatusBadRequest, "BAD_REQUEST")
}

// TestSecretNotStoredInClear searches every column of every table for
// the secret — its raw bytes, base32 (either case) and hex — and fails
// when any holds it. Storing the secret unsealed fails here.
func TestSecretNotStoredInClear(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.signUp(t, "clear@example.com")
	f.enroll(t, u)
	replaced := append([]byte(nil), u.secret...) // a pending secret the second enrolment replaces
	f.enroll(t, u)
	require.NotEqual(t, replaced, u.secret)
	f.confirm(t, u)
	var forms []string
	for _, secret := range [][]byte{u.secret, replaced} {
		forms = append(forms, base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret),
			hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret))
		if utf8.Valid(secret) && !bytes.ContainsRune(secret, 0) {
			forms = append(forms, string(secret))
		}
	}
	// holds counts the rows of every column of the database that hold a
	// form of the secret.
	holds := func() map[string]int {
		rows, err := f.DB.Owner.Query(bg, `SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns
			WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3`)
		require.NoError(t, err)
		type col struct{ schema, table, name, typ string }
		var cols []col
		for rows.Next() {
			var c col
			require.NoError(t, rows.Scan(&c.schema, &c.table, &c.name, &c.typ))
			cols = append(cols, c)
		}
		require.NoError(t, rows.Err())
		require.Greater(t, len(cols), 50, "the search must cover the schema")
		found := map[string]int{}
		for _, c := range cols {
			where := fmt.Sprintf(`%q.%q.%q`, c.schema, c.table, c.name)
			from := fmt.Sprintf(`%q.%q AS t`, c.schema, c.table)
			v := fmt.Sprintf(`t.%q`, c.name)
			var n int
			if c.typ == "bytea" {
				err = f.DB.Owner.QueryRow(bg, `SELECT count(*) FROM `+from+`
					WHERE position($1::bytea IN `+v+`) > 0 OR position($2::bytea IN `+v+`) > 0`, u.secret, replaced).Scan(&n)
			} else {
				// Every text form of the secret, compared without case.
				err = f.DB.Owner.QueryRow(bg, `SELECT count(*) FROM `+from+` WHERE EXISTS (
					SELECT 1 FROM unnest($1::text[]) AS p(form) WHERE position(lower(p.form) IN lower(`+v+`::text)) > 0)`, forms).Scan(&n)
			}
			require.NoError(t, err, where)
			if n > 0 {
				found[where] = n
			}
		}
		return found
	}
	assert.Empty(t, holds(), "columns that hold the TOTP secret")

	// The search finds what it looks for: a probe table holding the secret
	// in base32 (lower case) and in raw bytes is found.
	_, err := f.DB.Owner.Exec(bg, `CREATE TABLE public.secret_probe (note text, raw bytea)`)
	require.NoError(t, err)
	_, err = f.DB.Owner.Exec(bg, `INSERT INTO public.secret_probe VALUES ($1, $2)`,
		"otp "+strings.ToLower(forms[0])+" end", append([]byte("x"), u.secret...))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{`"public"."secret_probe"."note"`: 1, `"public"."secret_probe"."raw"`: 1}, holds())
	// And the sealed secret is where it belongs: 20 bytes and the tag.
	assert.Equal(t, 1, f.OwnerInt(t, `SELECT count(*) FROM auth.mfa_factors WHERE user_id = $1 AND octet_length(secret_sealed) = $2`,
		u.id, mfa.SecretSize+16))
}
