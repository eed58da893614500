package manaauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/internal/mailtest"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/password"
	"github.com/mana-how/mana-auth/token"
)

// fixture is a Service on its own database with a real SMTP server, and its
// handler behind an httptest server (authtest.Fixture, with the short
// names these tests were written with).
type fixture struct {
	*authtest.Fixture
	db     *testutil.Database
	pool   *pgxpool.Pool
	svc    *manaauth.Service
	tokens *token.Tokens
	gate   *lockout.Service
	smtp   *mailtest.Server
	srv    *httptest.Server
	clock  *fakeClock
}

type fixtureOptions struct {
	requireVerification bool
	maxDailySignups     int
	db                  *testutil.Database // default: a fresh one
	pool                *pgxpool.Pool      // default: the database's runtime pool
	ipLimiter           lockout.Limiter
	params              password.Params
}

// fastParams keep argon2id cheap in tests that are not about its cost.
var fastParams = authtest.FastParams

func (o fixtureOptions) stack() authtest.Options {
	return authtest.Options{RequireVerification: o.requireVerification, MaxDailySignups: o.maxDailySignups,
		DB: o.db, Pool: o.pool, IPLimiter: o.ipLimiter, Params: o.params}
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	return wrap(authtest.New(t, o.stack()))
}

func wrap(s *authtest.Fixture) *fixture {
	return &fixture{Fixture: s, db: s.DB, pool: s.Pool, svc: s.Auth, tokens: s.Tokens, gate: s.Gate,
		smtp: s.SMTP, srv: s.Srv, clock: s.Clock}
}

// peer is a second instance on the same database (authtest.Fixture.Peer).
func (f *fixture) peer(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	return wrap(f.Peer(t, o.stack()))
}

// fakeClock starts at the real now and moves only when told.
type fakeClock = authtest.Clock

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

// Shorthands of authtest's helpers, under the names these tests use.
var (
	bearer         = authtest.Bearer
	requireError   = authtest.RequireError
	errCode        = authtest.ErrCode
	errDetails     = authtest.ErrDetails
	errFields      = authtest.ErrFields
	userOf         = authtest.UserOf
	strongPassword = authtest.StrongPassword
	keys           = authtest.Keys
	flipLast       = authtest.FlipLast
)

const mailWait = authtest.MailWait

// call sends a JSON request to the auth handler.
func (f *fixture) call(t testing.TB, method, path string, body any, hdr map[string]string) (int, map[string]any, *http.Response) {
	t.Helper()
	return f.Call(t, method, authtest.AuthPrefix+path, body, hdr)
}

// try is call for goroutines other than the test's.
func (f *fixture) try(ctx context.Context, method, path string, body any, hdr map[string]string) (int, map[string]any, error) {
	return f.Try(ctx, method, authtest.AuthPrefix+path, body, hdr)
}

func (f *fixture) mailToken(t testing.TB, to, path string) string {
	t.Helper()
	return f.MailToken(t, to, path)
}

func (f *fixture) mailsTo(to string) int { return f.MailsTo(to) }

func (f *fixture) settleMail(t testing.TB) {
	t.Helper()
	f.SettleMail(t)
}

func (f *fixture) signUp(t testing.TB, email, password string) string {
	t.Helper()
	return f.SignUp(t, email, password)
}

func (f *fixture) login(t testing.TB, email, password string) (access, refresh string) {
	t.Helper()
	return f.Login(t, email, password)
}

func (f *fixture) ownerInt(t testing.TB, sql string, args ...any) int {
	t.Helper()
	return f.OwnerInt(t, sql, args...)
}
