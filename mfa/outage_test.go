package mfa_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/mfa"
)

// TestDatabaseDownCountsNothing: with the database cut away, /verify
// answers 503 for right and wrong codes alike and nothing is counted or
// recorded; when it is back, the right code signs in. If an outage were
// taken for a wrong code, the failures (and a lock) would show here.
func TestDatabaseDownCountsNothing(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	proxy := testutil.NewProxy(t, testutil.ServerAddr(t))
	f := newFixture(t, fixtureOptions{db: db, pool: testutil.OpenPool(t, proxy.URL(db.RuntimeURL))})
	u := f.enabled(t, "outage@example.com")
	tok := f.challenge(t, u)
	attempts := f.OwnerInt(t, `SELECT count(*) FROM auth.login_attempts WHERE email = $1`, u.email)

	proxy.Cut()
	for i := range 8 {
		for _, c := range []string{"000000", rfc6238(u.secret, f.Clock.Now())} {
			st, body, resp := f.verify(t, tok, code(c))
			authtest.RequireError(t, st, body, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
			assert.NotEmpty(t, resp.Header.Get("Retry-After"), "try %d", i)
		}
		st, body, _ := f.verify(t, tok, recovery(u.recovery[0]))
		authtest.RequireError(t, st, body, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	}
	proxy.Restore()

	failures, locked := f.lockout(t, u.email)
	assert.Zero(t, failures, "failures counted during the outage")
	assert.False(t, locked)
	assert.Equal(t, attempts, f.OwnerInt(t, `SELECT count(*) FROM auth.login_attempts WHERE email = $1`, u.email))
	var st int
	var body map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, body, _ = f.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
		if st != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
	}
	require.Equal(t, http.StatusOK, st, "%v", body)
	_, left := f.status(t, u)
	assert.Equal(t, 10, left, "no recovery code was spent by the outage")
}

// TestMissingKEKCountsNothing: a secret sealed under a KEK the ring no
// longer holds is configuration trouble found after the gate admitted the
// attempt: 503, and the admission is taken back — the right code is not
// blamed on the user, and neither are wrong ones. Put back, the key works.
func TestMissingKEKCountsNothing(t *testing.T) {
	t.Parallel()
	old := newRing(t, "old")
	db := testutil.DB(t)
	f := newFixture(t, fixtureOptions{db: db, keys: old})
	u := f.enabled(t, "kek@example.com")

	// Another instance whose ring lost the old KEK.
	g := newFixture(t, fixtureOptions{db: db, keys: newRing(t, "new")})
	tok := f.challenge(t, u)
	for range 6 {
		st, body, _ := g.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
		authtest.RequireError(t, st, body, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	}
	failures, locked := f.lockout(t, u.email)
	assert.Zero(t, failures)
	assert.False(t, locked)
	unknown, err := mfa.UnknownKEKs(bg, g.Pool, g.keys)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"old": 1}, unknown)

	st, body, _ := f.verify(t, tok, code(rfc6238(u.secret, f.Clock.Now())))
	require.Equal(t, http.StatusOK, st, "%v", body)
}

// TestDatabaseFailureInsideTheSignInCountsNothing: the database fails in
// the transaction that starts the session — after the gate admitted the
// attempt and the code checked out (a trigger raises admin_shutdown,
// 57P01, as a server going down does) — and the answer is 503 with the
// admission taken back: no failure counted, the mfaToken and the code
// still unspent.
func TestDatabaseFailureInsideTheSignInCountsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "midway@example.com")
	tok := f.challenge(t, u)
	_, err := f.DB.Owner.Exec(bg, `CREATE FUNCTION public.fail_challenge() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'terminating connection due to administrator command' USING ERRCODE = '57P01'; END $$;
		CREATE TRIGGER fail_challenge BEFORE UPDATE ON auth.mfa_challenges FOR EACH ROW EXECUTE FUNCTION public.fail_challenge()`)
	require.NoError(t, err)
	c := rfc6238(u.secret, f.Clock.Now())
	for range 6 {
		st, body, _ := f.verify(t, tok, code(c))
		authtest.RequireError(t, st, body, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
		st, body, _ = f.verify(t, tok, recovery(u.recovery[0]))
		authtest.RequireError(t, st, body, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	}
	failures, locked := f.lockout(t, u.email)
	assert.Zero(t, failures)
	assert.False(t, locked)
	_, err = f.DB.Owner.Exec(bg, `DROP TRIGGER fail_challenge ON auth.mfa_challenges`)
	require.NoError(t, err)
	st, body, _ := f.verify(t, tok, code(c))
	require.Equal(t, http.StatusOK, st, "the same token and code work: %v", body)
	_, left := f.status(t, u)
	assert.Equal(t, 10, left)
}
