package manaauth_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/mailtest"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
)

// fixture is a Service on its own database with a real SMTP server, and its
// handler behind an httptest server.
type fixture struct {
	db     *testutil.Database
	pool   *pgxpool.Pool
	svc    *manaauth.Service
	tokens *manaauth.Tokens
	gate   *lockout.Service
	smtp   *mailtest.Server
	srv    *httptest.Server
	clock  *fakeClock
}

type fixtureOptions struct {
	requireVerification bool
	maxDailySignups     int
	pool                *pgxpool.Pool // default: the database's runtime pool
	ipLimiter           lockout.Limiter
	params              manaauth.PasswordParams
}

// fastParams keep argon2id cheap in tests that are not about its cost.
var fastParams = manaauth.PasswordParams{Memory: 1024, Time: 1, Threads: 1}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{db: testutil.DB(t), smtp: mailtest.NewServer(t), clock: newFakeClock()}
	f.pool = o.pool
	if f.pool == nil {
		f.pool = f.db.Runtime
	}
	if o.params == (manaauth.PasswordParams{}) {
		o.params = fastParams
	}
	logger := slog.New(slog.DiscardHandler)
	hasher, err := manaauth.NewHasher(manaauth.HasherConfig{Params: o.params})
	require.NoError(t, err)
	key, err := manaauth.GenerateSigningKey(rand.Reader)
	require.NoError(t, err)
	f.tokens, err = manaauth.NewTokens(manaauth.TokenConfig{Issuer: "http://auth.test", Audience: "mana", Signing: key, Now: f.clock.Now})
	require.NoError(t, err)
	events, err := lockout.NewEvents(lockout.EventsConfig{Pool: f.pool, Now: f.clock.Now, Logger: logger})
	require.NoError(t, err)
	f.gate, err = lockout.New(lockout.Config{Pool: f.pool, Events: events, Now: f.clock.Now, Logger: logger})
	require.NoError(t, err)
	mailer, err := manaauth.NewSMTPMailer(manaauth.SMTPConfig{URL: f.smtp.URL(), From: "auth@test.example"})
	require.NoError(t, err)
	base, err := url.Parse("https://app.test.example/auth")
	require.NoError(t, err)
	f.svc, err = manaauth.New(manaauth.Config{
		Pool: f.pool, Hasher: hasher, Tokens: f.tokens, Gate: f.gate, Events: events,
		Mailer: mailer, Links: manaauth.Links{BaseURL: base}, Now: f.clock.Now, Logger: logger,
		RequireEmailVerification: o.requireVerification, MaxDailySignups: o.maxDailySignups,
	})
	require.NoError(t, err)
	t.Cleanup(f.svc.Close)
	h := manaauth.NewHandler(f.svc, manaauth.HandlerOptions{Logger: logger, IPLimiter: o.ipLimiter})
	f.srv = httptest.NewServer(http.StripPrefix("/api/v1/auth", h))
	t.Cleanup(f.srv.Close)
	return f
}

// fakeClock starts at the real now (tokens are checked against it) and
// moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().UTC().Truncate(time.Microsecond)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var bg = context.Background()

// exampleDatabase is the pool of the runnable example. pgxpool connects on
// first use, and the example's request never reaches the database.
func exampleDatabase() *pgxpool.Pool {
	pool, err := pgxpool.New(context.Background(), "postgres://mana_auth_runtime@127.0.0.1:5432/app")
	if err != nil {
		panic(err)
	}
	return pool
}
