// Package authtest is the test harness of the packages built on manaauth:
// a real account stack (token, password, lockout, manaauth, mail through a
// real in-process SMTP server) on a fresh PostgreSQL database of its own,
// behind an httptest server whose mux a test extends with the handlers it
// tests (spaces, passkey, apikey, …), and the helpers to sign up, sign in
// and read answers and mails.
package authtest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/mailtest"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/password"
	"github.com/mana-how/mana-auth/token"
)

// AuthPrefix is where the fixture mounts manaauth's handler.
const AuthPrefix = "/api/v1/auth"

// StrongPassword passes the password policy.
const StrongPassword = "tangerine-orbit-4711"

// MailWait bounds how long a test waits for a mail the service must send.
const MailWait = 10 * time.Second

// FastParams keep argon2id cheap in tests that are not about its cost.
var FastParams = password.Params{Memory: 1024, Time: 1, Threads: 1}

// Issuer and Audience of the fixture's tokens.
const (
	Issuer   = "http://auth.test"
	Audience = "mana"
)

// Options configure New. The zero value is a stack that does not require
// email verification, with cheap hashing.
type Options struct {
	RequireVerification bool
	MaxDailySignups     int
	// DB is the database; default a fresh one (testutil.DB). Pool is the
	// runtime pool the services use; default DB.Runtime.
	DB        *testutil.Database
	Pool      *pgxpool.Pool
	IPLimiter lockout.Limiter
	Params    password.Params // zero: FastParams
	Hooks     manaauth.Hooks
	// SecondFactor is the login's second step (the mfa package); nil: none.
	SecondFactor manaauth.SecondFactor
	// Clock is the services' clock; default a new one at the real now
	// (NewClock). Give one when something built before the fixture (a
	// SecondFactor) must read the same time.
	Clock *Clock
	// Registerer receives the services' metrics; default a fresh registry
	// (Fixture.Registry).
	Registerer *prometheus.Registry
	// BaseURL is the public URL links and cookies are built for; default
	// https://app.test.example/auth.
	BaseURL string
	// Mount, when set, mounts further handlers on the fixture's mux
	// before the server starts.
	Mount func(f *Fixture, mux *http.ServeMux)
}

// Fixture is one account stack on its own database.
type Fixture struct {
	DB       *testutil.Database
	Pool     *pgxpool.Pool
	Auth     *manaauth.Service
	Handler  *manaauth.Handler
	Tokens   *token.Tokens
	Hasher   *password.Hasher
	Gate     *lockout.Service
	Events   *lockout.Events
	SMTP     *mailtest.Server
	Mailer   mail.Mailer
	Links    mail.Links
	Clock    *Clock
	Registry *prometheus.Registry
	Logger   *slog.Logger
	Srv      *httptest.Server
}

// New builds the stack and starts its server; everything is cleaned up
// with t.
func New(t testing.TB, o Options) *Fixture {
	t.Helper()
	f := &Fixture{DB: o.DB, SMTP: mailtest.NewServer(t), Clock: o.Clock, Registry: o.Registerer,
		Logger: slog.New(slog.DiscardHandler)}
	if f.Clock == nil {
		f.Clock = NewClock()
	}
	if f.DB == nil {
		f.DB = testutil.DB(t)
	}
	if f.Registry == nil {
		f.Registry = prometheus.NewRegistry()
	}
	f.Pool = o.Pool
	if f.Pool == nil {
		f.Pool = f.DB.Runtime
	}
	var err error
	f.Mailer, err = mail.NewSMTP(mail.SMTPConfig{URL: f.SMTP.URL(), From: "auth@test.example"})
	require.NoError(t, err)
	base, err := url.Parse(cmp.Or(o.BaseURL, "https://app.test.example/auth"))
	require.NoError(t, err)
	f.Links = mail.Links{BaseURL: base}
	f.build(t, o)
	mux := http.NewServeMux()
	mux.Handle(AuthPrefix+"/", http.StripPrefix(AuthPrefix, f.Handler))
	if o.Mount != nil {
		o.Mount(f, mux)
	}
	f.Srv = httptest.NewServer(mux)
	t.Cleanup(f.Srv.Close)
	return f
}

// build makes the services on f's pool, clock, mailer and links.
func (f *Fixture) build(t testing.TB, o Options) {
	t.Helper()
	params := o.Params
	if params == (password.Params{}) {
		params = FastParams
	}
	var err error
	f.Hasher, err = password.NewHasher(password.HasherConfig{Params: params})
	require.NoError(t, err)
	key, err := token.GenerateSigningKey(rand.Reader)
	require.NoError(t, err)
	f.Tokens, err = token.New(token.Config{Issuer: Issuer, Audience: Audience, Signing: key, Now: f.Clock.Now})
	require.NoError(t, err)
	f.Events, err = lockout.NewEvents(lockout.EventsConfig{Pool: f.Pool, Now: f.Clock.Now, Logger: f.Logger})
	require.NoError(t, err)
	f.Gate, err = lockout.New(lockout.Config{Pool: f.Pool, Events: f.Events, Now: f.Clock.Now, Logger: f.Logger})
	require.NoError(t, err)
	f.Auth, err = manaauth.New(manaauth.Config{
		Pool: f.Pool, Hasher: f.Hasher, Tokens: f.Tokens, Gate: f.Gate, Events: f.Events,
		Mailer: f.Mailer, Links: f.Links, Now: f.Clock.Now, Logger: f.Logger, Hooks: o.Hooks, Registerer: f.Registry,
		SecondFactor:             o.SecondFactor,
		RequireEmailVerification: o.RequireVerification, MaxDailySignups: o.MaxDailySignups,
	})
	require.NoError(t, err)
	t.Cleanup(f.Auth.Close)
	f.Handler = manaauth.NewHandler(f.Auth, manaauth.HandlerOptions{Logger: f.Logger, IPLimiter: o.IPLimiter})
}

// Peer is a second instance: another service, gate, hasher, signing key
// and handler on the same pool (so the same database) as f, sending to
// f's SMTP server and reading f's clock — what a second replica behind a
// load balancer is. Only o's verification, signup cap, second factor and
// Mount apply.
func (f *Fixture) Peer(t testing.TB, o Options) *Fixture {
	t.Helper()
	p := &Fixture{DB: f.DB, Pool: f.Pool, SMTP: f.SMTP, Mailer: f.Mailer, Links: f.Links, Clock: f.Clock,
		Registry: prometheus.NewRegistry(), Logger: f.Logger}
	p.build(t, Options{RequireVerification: o.RequireVerification, MaxDailySignups: o.MaxDailySignups,
		SecondFactor: o.SecondFactor})
	mux := http.NewServeMux()
	mux.Handle(AuthPrefix+"/", http.StripPrefix(AuthPrefix, p.Handler))
	if o.Mount != nil {
		o.Mount(p, mux)
	}
	p.Srv = httptest.NewServer(mux)
	t.Cleanup(p.Srv.Close)
	return p
}

// Clock starts at the real now (tokens are checked against it) and moves
// only when told.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at the current time.
func NewClock() *Clock { return &Clock{t: time.Now().UTC().Truncate(time.Microsecond)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Call sends a JSON request to path on the fixture's server and decodes
// the answer; it fails the test on a transport error.
func (f *Fixture) Call(t testing.TB, method, path string, body any, hdr map[string]string) (int, map[string]any, *http.Response) {
	t.Helper()
	st, out, resp, err := do(context.Background(), f.Srv.Client(), method, f.Srv.URL+path, body, hdr)
	require.NoError(t, err, "%s %s", method, path)
	return st, out, resp
}

// Try is Call for goroutines other than the test's: it reports trouble as
// an error instead of failing the test.
func (f *Fixture) Try(ctx context.Context, method, path string, body any, hdr map[string]string) (int, map[string]any, error) {
	return SendJSON(ctx, f.Srv.Client(), method, f.Srv.URL+path, body, hdr)
}

// SendJSON sends body (nil: none) as JSON with the headers hdr and decodes
// the JSON answer. It does not use require, so goroutines may call it.
func SendJSON(ctx context.Context, client *http.Client, method, url string, body any, hdr map[string]string) (int, map[string]any, error) {
	st, out, _, err := do(ctx, client, method, url, body, hdr)
	return st, out, err
}

func do(ctx context.Context, client *http.Client, method, url string, body any, hdr map[string]string) (int, map[string]any, *http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
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
			return resp.StatusCode, nil, resp, fmt.Errorf("%s %s answered %d %q: %w", method, url, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, out, resp, nil
}

// Bearer is the Authorization header of an access token.
func Bearer(access string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + access}
}

// RequireError checks an error answer's status and envelope code.
func RequireError(t testing.TB, st int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	require.Equal(t, wantStatus, st, "status; body %v", body)
	require.Equal(t, wantCode, ErrCode(body), "code; body %v", body)
}

// ErrCode returns error.code of an envelope.
func ErrCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// ErrDetails returns error.details of an envelope (nil when absent).
func ErrDetails(body map[string]any) map[string]any {
	e, _ := body["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	return d
}

// ErrFields returns error.details.fields of a VALIDATION_FAILED envelope.
func ErrFields(body map[string]any) map[string]any {
	f, _ := ErrDetails(body)["fields"].(map[string]any)
	return f
}

// UserOf returns the user object of an answer.
func UserOf(t testing.TB, body map[string]any) map[string]any {
	t.Helper()
	u, ok := body["user"].(map[string]any)
	require.True(t, ok, "answer has no user object: %v", body)
	return u
}

// MailToken waits for the next mail to to and returns the token of its
// one <path>?token= link.
func (f *Fixture) MailToken(t testing.TB, to, path string) string {
	t.Helper()
	m := f.SMTP.WaitFor(t, to, MailWait)
	return mailtest.TokenFromText(t, m.Text, path)
}

// MailsTo counts the mails the SMTP server received for to.
func (f *Fixture) MailsTo(to string) int {
	n := 0
	for _, m := range f.SMTP.Messages() {
		for _, r := range m.To {
			if strings.EqualFold(r, to) {
				n++
			}
		}
	}
	return n
}

// SettleMail waits until every mail the account service started has been
// handed to the SMTP server (Service.Close waits for them; the server
// records a mail before it acknowledges it), plus a grace second for
// anything slower, so that "no mail" checks are meaningful. close, when
// given, are further services whose mails to wait for.
func (f *Fixture) SettleMail(t testing.TB, close ...func()) {
	t.Helper()
	wait := func() {
		f.Auth.Close()
		for _, c := range close {
			c()
		}
	}
	wait()
	time.Sleep(time.Second)
	wait()
}

// SignUp registers an account, consumes its verification mail and redeems
// it, so that later waits for the address see only later mails. It
// returns the user id.
func (f *Fixture) SignUp(t testing.TB, email, password string) string {
	t.Helper()
	st, body, _ := f.Call(t, "POST", AuthPrefix+"/register", map[string]any{"email": email, "password": password}, nil)
	require.Equal(t, http.StatusCreated, st, "register %s: %v", email, body)
	id, _ := UserOf(t, body)["id"].(string)
	tok := f.MailToken(t, strings.ToLower(strings.TrimSpace(email)), "verify-email")
	st, body, _ = f.Call(t, "POST", AuthPrefix+"/verify-email", map[string]any{"token": tok}, nil)
	require.Equal(t, http.StatusOK, st, "verify %s: %v", email, body)
	return id
}

// Login signs in and returns the access and the refresh token.
func (f *Fixture) Login(t testing.TB, email, password string) (access, refresh string) {
	t.Helper()
	st, body, _ := f.Call(t, "POST", AuthPrefix+"/login", map[string]any{"email": email, "password": password}, nil)
	require.Equal(t, http.StatusOK, st, "login %s: %v", email, body)
	access, _ = body["accessToken"].(string)
	refresh, _ = body["refreshToken"].(string)
	require.NotEmpty(t, access)
	require.NotEmpty(t, refresh)
	return access, refresh
}

// OwnerInt runs a counting query as the table owner (past row-level
// security and grants).
func (f *Fixture) OwnerInt(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.DB.Owner.QueryRow(context.Background(), sql, args...).Scan(&n), sql)
	return n
}

// Metric reads a counter of the fixture's registry: the sample of name
// whose labels include every given name=value pair; 0 when there is none.
func (f *Fixture) Metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := f.Registry.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// Keys lists the keys of a JSON object, for comparing its shape.
func Keys(m map[string]any) []string { return slices.Collect(maps.Keys(m)) }

// FlipLast changes the last character of a token: a token of the right
// shape that names nothing.
func FlipLast(tok string) string {
	last := "A"
	if tok[len(tok)-1] == 'A' {
		last = "B"
	}
	return tok[:len(tok)-1] + last
}
