package lockout_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
)

// clock is a fake clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newGate(t testing.TB, pool *pgxpool.Pool, now func() time.Time) *lockout.Service {
	t.Helper()
	events, err := lockout.NewEvents(lockout.EventsConfig{Pool: pool, Now: now})
	require.NoError(t, err)
	s, err := lockout.New(lockout.Config{Pool: pool, Events: events, Now: now})
	require.NoError(t, err)
	return s
}

var wrongPassword = autherr.New(autherr.InvalidCredentials, "invalid email or password")

// try runs one attempt through the gate with the given outcome of the
// credential check; it returns the gate's error (nil when admitted and
// recorded).
func try(t testing.TB, g *lockout.Service, email string, outcome error) error {
	t.Helper()
	ctx := context.Background()
	tk, err := g.Begin(ctx, lockout.Attempt{Email: email, Method: lockout.Password})
	if err != nil {
		return err
	}
	if err := tk.Finish(ctx, uuid.Nil, outcome); err != nil {
		return err
	}
	return outcome
}

func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// TestBurstOfWrongPasswordsAdmitsAtMostFive is the CVE-2024-4629 class:
// when the check and the increment are separate statements, every one of a
// burst of parallel attempts reads "4 failures, not locked" and goes on to
// verify a password. Rewriting Begin as "SELECT the count, then UPDATE"
// makes admitted climb far above 5 here (and typically to dozens).
func TestBurstOfWrongPasswordsAdmitsAtMostFive(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	pool := db.Pool(t, true, func(c *pgxpool.Config) { c.MaxConns = 20 })
	g := newGate(t, pool, nil)
	const n = 200
	const email = "victim@example.com"

	var admitted, locked, other atomic.Int32
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			ctx := context.Background()
			tk, err := g.Begin(ctx, lockout.Attempt{Email: email, Method: lockout.Password})
			if err != nil {
				if autherr.CodeOf(err) == autherr.AccountLocked {
					locked.Add(1)
				} else {
					t.Errorf("Begin: %v", err)
					other.Add(1)
				}
				return
			}
			admitted.Add(1)
			if err := tk.Finish(ctx, uuid.Nil, wrongPassword); err != nil {
				t.Errorf("Finish: %v", err)
				other.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()

	assert.Equal(t, int32(5), admitted.Load(), "attempts evaluated as not locked")
	assert.Equal(t, int32(n-5), locked.Load(), "attempts refused as locked")
	assert.Zero(t, other.Load(), "errors other than 401/429")
	assert.Equal(t, n, count(t, db.Owner, "SELECT count(*) FROM auth.login_attempts WHERE email = $1 AND NOT successful", email),
		"every attempt is recorded")
	assert.Equal(t, 1, count(t, db.Owner, "SELECT count(*) FROM auth.security_events WHERE event_type = 'ACCOUNT_LOCKED'"),
		"the lock is one security event")

	// The right password afterwards is refused too.
	err := try(t, g, email, nil)
	require.Equal(t, autherr.AccountLocked, autherr.CodeOf(err), "correct password while locked: %v", err)
	var ae *autherr.Error
	require.ErrorAs(t, err, &ae)
	assert.InDelta(t, 30*60, ae.RemainingSeconds, 5)
}

func TestWindowAndLockBoundaries(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)

	t.Run("five failures over 15:01 do not lock", func(t *testing.T) {
		c := newClock()
		g := newGate(t, db.Runtime, c.Now)
		for i := range 5 {
			if i > 0 {
				c.Advance((15*time.Minute + time.Second) / 4)
			}
			require.Equal(t, autherr.InvalidCredentials, autherr.CodeOf(try(t, g, "spread@example.com", wrongPassword)), "failure %d", i+1)
		}
		require.Equal(t, autherr.InvalidCredentials, autherr.CodeOf(try(t, g, "spread@example.com", wrongPassword)),
			"the first failure left the window, so the sixth attempt is still admitted")
	})

	t.Run("five failures within 14:59 lock, and the lock ends at 30:00", func(t *testing.T) {
		c := newClock()
		g := newGate(t, db.Runtime, c.Now)
		for i := range 5 {
			if i > 0 {
				c.Advance((15*time.Minute - time.Second) / 4)
			}
			require.Equal(t, autherr.InvalidCredentials, autherr.CodeOf(try(t, g, "burst@example.com", wrongPassword)), "failure %d", i+1)
		}
		c.Advance(30*time.Minute - time.Second)
		err := try(t, g, "burst@example.com", nil)
		require.Equal(t, autherr.AccountLocked, autherr.CodeOf(err), "at 29:59 still locked")
		var ae *autherr.Error
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, 1, ae.RemainingSeconds)

		c.Advance(time.Second)
		require.NoError(t, try(t, g, "burst@example.com", nil), "at 30:00 the lock is over")
	})

	t.Run("failures while locked do not extend the lock", func(t *testing.T) {
		c := newClock()
		g := newGate(t, db.Runtime, c.Now)
		for range 5 {
			require.Equal(t, autherr.InvalidCredentials, autherr.CodeOf(try(t, g, "extend@example.com", wrongPassword)))
		}
		for range 10 {
			c.Advance(2 * time.Minute)
			require.Equal(t, autherr.AccountLocked, autherr.CodeOf(try(t, g, "extend@example.com", wrongPassword)))
		}
		c.Advance(10 * time.Minute) // 30:00 after the lock engaged
		require.NoError(t, try(t, g, "extend@example.com", nil))
	})
}

func TestOnlyInvalidCredentialsCount(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	g := newGate(t, db.Runtime, nil)
	// If Finish counted every error (the incident: a schema-drift 42703
	// became "invalid credentials"), the sixth attempt would be locked.
	outage := autherr.Wrap(autherr.ServiceUnavailable, context.DeadlineExceeded, "")
	for i := range 10 {
		err := try(t, g, "infra@example.com", outage)
		require.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err), "attempt %d", i)
	}
	require.NoError(t, try(t, g, "infra@example.com", nil), "infrastructure failures never lock")
	assert.Equal(t, 1, count(t, db.Owner, "SELECT count(*) FROM auth.login_attempts WHERE email = 'infra@example.com'"),
		"released admissions record nothing; only the success is a row")
}

func TestSuccessResetsTheCount(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	g := newGate(t, db.Runtime, nil)
	for range 4 {
		require.Error(t, try(t, g, "reset@example.com", wrongPassword))
	}
	require.NoError(t, try(t, g, "reset@example.com", nil))
	for range 4 {
		require.Equal(t, autherr.InvalidCredentials, autherr.CodeOf(try(t, g, "reset@example.com", wrongPassword)))
	}
	locked, _, err := g.Status(context.Background(), "reset@example.com")
	require.NoError(t, err)
	assert.False(t, locked, "4 + success + 4 must not lock")
}

func TestEmailIsCanonicalAndUnknownAddressesLockToo(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	g := newGate(t, db.Runtime, nil)
	for _, e := range []string{"Alice@X.com ", "alice@x.com", " ALICE@x.COM", "alice@X.com", "alice@x.com\t"} {
		require.Equal(t, autherr.InvalidCredentials, autherr.CodeOf(try(t, g, e, wrongPassword)), e)
	}
	require.Equal(t, autherr.AccountLocked, autherr.CodeOf(try(t, g, "alice@x.com", nil)),
		"five spellings of one address are one counter; no account exists, and it locks the same")
}

func TestClearLiftsTheLock(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	g := newGate(t, db.Runtime, nil)
	for range 5 {
		require.Error(t, try(t, g, "clear@example.com", wrongPassword))
	}
	require.Equal(t, autherr.AccountLocked, autherr.CodeOf(try(t, g, "clear@example.com", nil)))
	require.NoError(t, g.Clear(context.Background(), "Clear@example.com", uuid.Nil))
	require.NoError(t, try(t, g, "clear@example.com", nil), "a completed password reset clears the lock")
	assert.Equal(t, 1, count(t, db.Owner, "SELECT count(*) FROM auth.security_events WHERE event_type = 'LOCKOUT_CLEARED'"))
}

// TestRecordedRowsBindRealValues guards the two bugs of the old lockout:
// a UUID written into the serial id (every insert failed with 22P02, and
// the error was swallowed) and a time value the driver could not bind. If
// insertAttempt wrote id itself from a uuid, or bound attempted_at as
// formatted text, Finish would return the error and this test fails on
// require.NoError — and, were the error swallowed again, on the row count
// and the exact time read back.
func TestRecordedRowsBindRealValues(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	c := newClock()
	g := newGate(t, db.Runtime, c.Now)
	ctx := context.Background()
	userID := uuid.New()
	_, err := db.Owner.Exec(ctx, "INSERT INTO auth.users (id, email) VALUES ($1, 'bind@example.com')", userID)
	require.NoError(t, err)

	ip := netip.MustParseAddr("203.0.113.9")
	tk, err := g.Begin(ctx, lockout.Attempt{Email: "bind@example.com", Method: lockout.Password, IP: ip, UserAgent: "probe/1"})
	require.NoError(t, err)
	require.NoError(t, tk.Finish(ctx, userID, wrongPassword))
	tk, err = g.Begin(ctx, lockout.Attempt{Email: "bind@example.com", Method: lockout.Passkey})
	require.NoError(t, err)
	require.NoError(t, tk.Finish(ctx, userID, nil))

	rows, err := db.Owner.Query(ctx, `SELECT id, ip_address::text, user_agent, successful, method, attempted_at
		FROM auth.login_attempts WHERE email = 'bind@example.com' ORDER BY id`)
	require.NoError(t, err)
	type row struct {
		id        int64
		ip, ua    *string
		ok        bool
		method    string
		attempted time.Time
	}
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.id, &r.ip, &r.ua, &r.ok, &r.method, &r.attempted))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 2)
	assert.Less(t, got[0].id, got[1].id, "ids come from the table's own serial")
	require.NotNil(t, got[0].ip)
	assert.Equal(t, "203.0.113.9/32", *got[0].ip)
	assert.Equal(t, "probe/1", *got[0].ua)
	assert.False(t, got[0].ok)
	assert.Nil(t, got[1].ip, "absent IP is NULL")
	assert.Nil(t, got[1].ua, "absent user agent is NULL")
	assert.True(t, got[1].ok)
	assert.Equal(t, "passkey", got[1].method)
	assert.True(t, c.Now().Equal(got[0].attempted), "attempted_at %v, want the bound clock value %v", got[0].attempted, c.Now())

	assert.Equal(t, 1, count(t, db.Owner, "SELECT count(*) FROM auth.security_events WHERE event_type = 'LOGIN_FAILURE' AND user_id = $1", userID))
	// api.md: a passkey login records LOGIN_SUCCESS with method passkey.
	assert.Equal(t, 1, count(t, db.Owner, "SELECT count(*) FROM auth.security_events WHERE event_type = 'LOGIN_SUCCESS' AND metadata->>'method' = 'passkey' AND user_id = $1", userID))
}

// TestGateFailsClosedWhenTheDatabaseIsDown: the old gate answered "not
// locked" when its query failed. Here the pool goes through a proxy the test
// cuts; Begin must answer SERVICE_UNAVAILABLE (never admitted, never
// INVALID_CREDENTIALS or ACCOUNT_LOCKED), and nothing is recorded.
func TestGateFailsClosedWhenTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	proxy := testutil.NewProxy(t, testutil.ServerAddr(t))
	pool := testutil.OpenPool(t, proxy.URL(db.RuntimeURL))
	g := newGate(t, pool, nil)
	ctx := context.Background()

	require.Equal(t, autherr.InvalidCredentials, autherr.CodeOf(try(t, g, "down@example.com", wrongPassword)))

	proxy.Cut()
	for range 3 {
		tk, err := g.Begin(ctx, lockout.Attempt{Email: "down@example.com", Method: lockout.Password})
		require.Nil(t, tk, "admitted while the database is down")
		require.Error(t, err)
		assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err), "got %v", err)
		assert.True(t, autherr.IsUnavailable(err))
		assert.False(t, autherr.CountsTowardLockout(err))
	}
	proxy.Restore()
	require.NoError(t, try(t, g, "down@example.com", nil), "works again once the database is back")

	assert.Equal(t, 2, count(t, db.Owner, "SELECT count(*) FROM auth.login_attempts WHERE email = 'down@example.com'"),
		"no row appeared for the attempts made during the outage")
}

func TestGateOnDeadPortIsUnavailable(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	proxy := testutil.NewProxy(t, testutil.ServerAddr(t))
	url := proxy.URL(db.RuntimeURL)
	proxy.Cut() // refuses every connection, like a stopped server
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	g := newGate(t, pool, nil)
	err = try(t, g, "dead@example.com", wrongPassword)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err), "got %v", err)
	assert.Zero(t, count(t, db.Owner, "SELECT count(*) FROM auth.login_attempts"))
}

func BenchmarkGate(b *testing.B) {
	db := testutil.DB(b)
	g := newGate(b, db.Runtime, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		// One admitted, successful login: the gate's admission statement
		// plus the transaction recording the attempt and its event.
		email := "bench" + string(rune('a'+i%26)) + "@example.com"
		tk, err := g.Begin(ctx, lockout.Attempt{Email: email, Method: lockout.Password})
		if err != nil {
			b.Fatal(err)
		}
		if err := tk.Finish(ctx, uuid.Nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPasswordThenWrongCodesShareOneBudget: with a second factor, the right
// password opens the second step without clearing earlier failures
// (Challenge takes its admission back), and wrong codes count like wrong
// passwords. If Challenge recorded a success instead, the counter would
// reset at every right password and an attacker who knows the password
// could guess codes forever (4 codes, the password, 4 codes, …): the lock
// below would never come. If MFA_INVALID_CODE did not count, the six
// wrong codes would all be admitted.
func TestPasswordThenWrongCodesShareOneBudget(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	g := newGate(t, db.Runtime, nil)
	ctx := context.Background()
	const email = "mfa@example.com"
	userID := uuid.New()
	_, err := db.Owner.Exec(ctx, `INSERT INTO auth.users (id, email) VALUES ($1, $2)`, userID, email)
	require.NoError(t, err)
	wrongCode := autherr.New(autherr.MFAInvalidCode, "invalid code")
	code := func(outcome error) error {
		t.Helper()
		tk, err := g.Begin(ctx, lockout.Attempt{Email: email, Method: lockout.MFA})
		if err != nil {
			return err
		}
		if err := tk.Finish(ctx, userID, outcome); err != nil {
			return err
		}
		return outcome
	}
	passwordStep := func() {
		t.Helper()
		tk, err := g.Begin(ctx, lockout.Attempt{Email: email, Method: lockout.Password})
		require.NoError(t, err)
		require.NoError(t, tk.Challenge(ctx, userID))
	}
	passwordStep()
	for i := range 2 {
		require.Equal(t, autherr.MFAInvalidCode, autherr.CodeOf(code(wrongCode)), "code %d", i)
	}
	passwordStep() // right password again: must not reset the two failures
	for i := range 3 {
		require.Equal(t, autherr.MFAInvalidCode, autherr.CodeOf(code(wrongCode)), "code %d", i)
	}
	// Five wrong codes: locked, for codes and passwords alike.
	require.Equal(t, autherr.AccountLocked, autherr.CodeOf(code(nil)), "the right code while locked")
	_, err = g.Begin(ctx, lockout.Attempt{Email: email, Method: lockout.Password})
	require.Equal(t, autherr.AccountLocked, autherr.CodeOf(err), "the password while locked")

	assert.Equal(t, 2, count(t, db.Owner, "SELECT count(*) FROM auth.security_events WHERE event_type = 'MFA_REQUIRED' AND user_id = $1", userID))
	assert.Equal(t, 6, count(t, db.Owner, "SELECT count(*) FROM auth.login_attempts WHERE email = $1 AND method = 'mfa' AND NOT successful", email),
		"five wrong codes and the right one refused while locked are rows")
	assert.Equal(t, 0, count(t, db.Owner, "SELECT count(*) FROM auth.security_events WHERE event_type = 'LOGIN_SUCCESS'"),
		"a password step that needs a second factor is not a login")
}
