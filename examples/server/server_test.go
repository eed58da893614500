package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/migrate"
	"github.com/mana-how/mana-auth/passkey"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

func testConfig(t testing.TB) Config {
	t.Helper()
	cfg, err := LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": t.TempDir()}))
	require.NoError(t, err)
	return cfg
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testServer(t *testing.T, pool *pgxpool.Pool) (*server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	cfg := testConfig(t)
	s := newServer(serverDeps{Config: cfg, Logger: logger, Pool: pool, Sources: sources()})
	if pool != nil {
		auth, err := newAuthStack(context.Background(), cfg, pool, s.metrics.registry, logger)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, auth.Close()) })
		s.mountAuth(auth)
		require.NoError(t, s.mountPages(cfg))
	}
	return s, logs
}

type envelope struct {
	Error struct {
		Code      string         `json:"code"`
		Message   string         `json:"message"`
		RequestID string         `json:"requestId"`
		Details   map[string]any `json:"details"`
	} `json:"error"`
}

func decodeEnvelope(t *testing.T, b []byte) envelope {
	t.Helper()
	var e envelope
	require.NoError(t, json.Unmarshal(b, &e), "body %s", b)
	return e
}

func TestServerSourcesAreTheTestSources(t *testing.T) {
	// The tests migrate their template with testutil.Sources; if the server
	// mounted another list, tests would run against a schema it never has.
	var got, want []string
	for _, s := range sources() {
		got = append(got, s.Name)
	}
	for _, s := range testutil.Sources() {
		want = append(want, s.Name)
	}
	assert.Equal(t, want, got)
}

func TestHealthzAndCommonHeaders(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	s, _ := testServer(t, db.Runtime)
	c := newSpecClient(t, s.Handler())

	resp, body := c.do("GET", "/healthz", nil, http.Header{"X-Request-Id": {"req-123"}})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"status":"ok"}`, string(body))
	assert.Equal(t, "req-123", resp.Header.Get("X-Request-Id"), "request id echoed")
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	resp, _ = c.do("GET", "/healthz", nil, nil)
	assert.Len(t, resp.Header.Get("X-Request-Id"), 32, "a request id is generated when none is sent")
}

func TestReadyzFailsOnSchemaDriftNamingTheColumn(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	s, logs := testServer(t, db.Runtime)
	c := newSpecClient(t, s.Handler())

	resp, body := c.do("GET", "/readyz", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)

	// The incident: a column the code uses renamed under the server.
	_, err := db.Owner.Exec(ctx, "ALTER TABLE auth.users RENAME COLUMN email TO email_address")
	require.NoError(t, err)
	resp, body = c.do("GET", "/readyz", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	e := decodeEnvelope(t, body)
	assert.Equal(t, "SERVICE_UNAVAILABLE", e.Error.Code)
	assert.NotContains(t, string(body), "email", "the body must not name schema details")
	assert.NotContains(t, string(body), "auth.users")
	assert.Contains(t, logs.String(), "missing column auth.users.email", "the log names what is missing")

	_, err = db.Owner.Exec(ctx, "ALTER TABLE auth.users RENAME COLUMN email_address TO email")
	require.NoError(t, err)
	resp, body = c.do("GET", "/readyz", nil, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "ready again once the schema matches: %s", body)
}

func TestReadyzFailsOnPendingMigration(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	_, err := db.Owner.Exec(ctx, "DELETE FROM "+migrate.Table+" WHERE source = 'manaauth'")
	require.NoError(t, err)
	s, logs := testServer(t, db.Runtime)
	c := newSpecClient(t, s.Handler())
	resp, body := c.do("GET", "/readyz", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "SERVICE_UNAVAILABLE", decodeEnvelope(t, body).Error.Code)
	assert.Contains(t, logs.String(), "manaauth/0001_users.sql")
}

func TestReadyzFollowsDatabaseOutage(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	proxy := testutil.NewProxy(t, testutil.ServerAddr(t))
	pool := testutil.OpenPool(t, proxy.URL(db.RuntimeURL))
	s, logs := testServer(t, pool)
	c := newSpecClient(t, s.Handler())

	resp, body := c.do("GET", "/readyz", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)

	proxy.Cut()
	start := time.Now()
	resp, body = c.do("GET", "/readyz", nil, nil)
	elapsed := time.Since(start)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "SERVICE_UNAVAILABLE", decodeEnvelope(t, body).Error.Code)
	// The check's own timeout is 2 s; without it the request would wait
	// on the cut connection for the pool's dial and read timeouts. The
	// bound is wide so a loaded machine does not fail it.
	assert.Less(t, elapsed, 15*time.Second, "readiness must notice an outage within seconds")
	assert.Contains(t, logs.String(), "database unreachable")

	proxy.Restore()
	require.Eventually(t, func() bool {
		resp, _ := c.do("GET", "/readyz", nil, nil)
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 100*time.Millisecond, "ready again after the database is back, without a restart")
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	s, _ := testServer(t, db.Runtime)
	c := newSpecClient(t, s.Handler())
	c.do("GET", "/healthz", nil, nil)
	c.do("GET", "/healthz", nil, nil)
	c.do("GET", "/no-such-route", nil, nil)
	resp, body := c.do("GET", "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	text := string(body)
	assert.Contains(t, text, `mana_auth_http_requests_total{code="200",method="GET",route="GET /healthz"} 2`)
	assert.Contains(t, text, `mana_auth_http_requests_total{code="404",method="GET",route="unmatched"} 1`)
	assert.Contains(t, text, `mana_auth_http_request_duration_seconds_bucket{method="GET",route="GET /healthz"`)
	assert.Contains(t, text, "mana_auth_db_pool_max_connections")
}

func TestBodyLimitAnswers413Envelope(t *testing.T) {
	t.Parallel()
	s, _ := testServer(t, nil)
	// A route of the test's own that reads its body the way every handler
	// does (through web.Decode), behind the server's middleware.
	s.mux.Handle("POST /echo", echoHandler)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	big := `{"x":"` + strings.Repeat("a", maxBody) + `"}`
	resp, err := srv.Client().Post(srv.URL+"/echo", "application/json", strings.NewReader(big))
	require.NoError(t, err)
	defer resp.Body.Close()
	var e envelope
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "PAYLOAD_TOO_LARGE", e.Error.Code)
	assert.NotEmpty(t, e.Error.RequestID)

	small := `{"x":"` + strings.Repeat("a", maxBody-100) + `"}`
	resp2, err := srv.Client().Post(srv.URL+"/echo", "application/json", strings.NewReader(small))
	require.NoError(t, err)
	defer resp2.Body.Close()
	assert.Equal(t, http.StatusOK, resp2.StatusCode, "a body under 64 KiB passes")
}

// echoHandler reads its JSON body the way every handler does.
var echoHandler = web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	var v map[string]any
	if err := web.Decode(w, r, &v); err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, v)
})

func TestLoadConfigNamesTheBadVariable(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad env", map[string]string{"MANA_AUTH_ENV": "prod"}, "MANA_AUTH_ENV"},
		{"bad addr", map[string]string{"MANA_AUTH_ADDR": "8080"}, "MANA_AUTH_ADDR"},
		{"relative base url", map[string]string{"MANA_AUTH_BASE_URL": "localhost:8080"}, "MANA_AUTH_BASE_URL"},
		{"ip rp id", map[string]string{"MANA_AUTH_BASE_URL": "http://127.0.0.1:8080"}, "WEBAUTHN_RP_ID"},
		{"rp id of another site", map[string]string{"MANA_AUTH_BASE_URL": "https://auth.example.com", "WEBAUTHN_RP_ID": "example.org"}, "WEBAUTHN_RP_ID"},
		{"rp id of a lookalike", map[string]string{"MANA_AUTH_BASE_URL": "https://authexample.com", "WEBAUTHN_RP_ID": "example.com"}, "WEBAUTHN_RP_ID"},
		{"rp id below the host", map[string]string{"MANA_AUTH_BASE_URL": "https://example.com", "WEBAUTHN_RP_ID": "auth.example.com"}, "WEBAUTHN_RP_ID"},
		{"bad rate", map[string]string{"MANA_AUTH_IP_RATE": "lots"}, "MANA_AUTH_IP_RATE"},
		{"bad rate unit", map[string]string{"MANA_AUTH_IP_RATE": "5/week"}, "MANA_AUTH_IP_RATE"},
		{"bad passkey options rate", map[string]string{"MANA_AUTH_PASSKEY_OPTIONS_RATE": "-3/min"}, "MANA_AUTH_PASSKEY_OPTIONS_RATE"},
		{"bad proxies", map[string]string{"MANA_AUTH_TRUSTED_PROXIES": "10.0.0.0/8,nonsense"}, "MANA_AUTH_TRUSTED_PROXIES"},
		{"short kek", map[string]string{"MANA_AUTH_KEK": "AAAA"}, "MANA_AUTH_KEK"},
		{"bad signups", map[string]string{"MAX_DAILY_SIGNUPS": "-1"}, "MAX_DAILY_SIGNUPS"},
		{"bad argon2id", map[string]string{"MANA_AUTH_ARGON2ID": "m=19456,t=0"}, "MANA_AUTH_ARGON2ID"},
		{"bad smtp", map[string]string{"SMTP_URL": "http://mail"}, "SMTP_URL"},
		{"bad starttls", map[string]string{"SMTP_URL": "smtp://mail:25?starttls=maybe"}, "SMTP_URL"},
		{"bad from", map[string]string{"MAIL_FROM": "nobody"}, "MAIL_FROM"},
		{"bad redis", map[string]string{"REDIS_URL": "localhost:6379"}, "REDIS_URL"},
		{"short service key", map[string]string{"MANA_AUTH_SERVICE_KEY": "short"}, "MANA_AUTH_SERVICE_KEY"},
		{"bad bool", map[string]string{"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION": "yes"}, "MANA_AUTH_REQUIRE_EMAIL_VERIFICATION"},
		{"bad db url", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{"relative state dir", map[string]string{"MANA_AUTH_STATE_DIR": "state"}, "MANA_AUTH_STATE_DIR"},
		{"debug on every interface", map[string]string{"MANA_AUTH_DEBUG_ADDR": ":6060"}, "MANA_AUTH_DEBUG_ADDR"},
		{"debug on a public address", map[string]string{"MANA_AUTH_DEBUG_ADDR": "0.0.0.0:6060"}, "MANA_AUTH_DEBUG_ADDR"},
		{"debug on a name", map[string]string{"MANA_AUTH_DEBUG_ADDR": "debug.example.com:6060"}, "MANA_AUTH_DEBUG_ADDR"},
		{"debug without port", map[string]string{"MANA_AUTH_DEBUG_ADDR": "127.0.0.1"}, "MANA_AUTH_DEBUG_ADDR"},
		{"production without database", map[string]string{"MANA_AUTH_ENV": "production", "MANA_AUTH_BASE_URL": "https://auth.example.com",
			"MANA_AUTH_KEK": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=", "MANA_AUTH_SIGNING_KEY": "x"}, "DATABASE_URL"},
		{"production without kek", map[string]string{"MANA_AUTH_ENV": "production", "MANA_AUTH_BASE_URL": "https://auth.example.com",
			"DATABASE_URL": "postgres://a@b/c", "MANA_AUTH_SIGNING_KEY": "x"}, "MANA_AUTH_KEK"},
		{"production without signing key", map[string]string{"MANA_AUTH_ENV": "production", "MANA_AUTH_BASE_URL": "https://auth.example.com",
			"DATABASE_URL": "postgres://a@b/c", "MANA_AUTH_KEK": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="}, "MANA_AUTH_SIGNING_KEY"},
		{"production over http", map[string]string{"MANA_AUTH_ENV": "production", "MANA_AUTH_BASE_URL": "http://auth.example.com",
			"DATABASE_URL": "postgres://a@b/c", "MANA_AUTH_KEK": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=", "MANA_AUTH_SIGNING_KEY": "x"}, "MANA_AUTH_BASE_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.env["MANA_AUTH_STATE_DIR"]; !ok {
				tc.env["MANA_AUTH_STATE_DIR"] = state
			}
			_, err := LoadConfig(mapEnv(tc.env))
			require.Error(t, err, "env %v", tc.env)
			assert.Contains(t, err.Error(), tc.want+":", "env %v", tc.env)
		})
	}

	cfg, err := LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": state}))
	require.NoError(t, err, "no configuration at all is a valid development configuration")
	assert.False(t, cfg.Production)
	assert.Equal(t, "127.0.0.1:8080", cfg.Addr)
	assert.Equal(t, "localhost", cfg.RPID)
	cfg, err = LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": state,
		"MANA_AUTH_BASE_URL": "https://auth.Example.com", "WEBAUTHN_RP_ID": "Example.com"}))
	require.NoError(t, err, "a parent domain of the host is a valid RP ID")
	assert.Equal(t, "example.com", cfg.RPID)
	assert.Equal(t, Rate{Limit: 300, Period: time.Minute}, cfg.IPRate)
	assert.Equal(t, Rate{Limit: passkey.OptionsRate.Limit, Period: passkey.OptionsRate.Period}, cfg.PasskeyOptionsRate,
		"the passkey options limit defaults to the passkey package's rate")
	assert.True(t, cfg.RequireEmailVerify)
	assert.Equal(t, "m=19456,t=2,p=1", cfg.Argon2id.String(), "the password package's defaults")

	cfg, err = LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": state, "MANA_AUTH_ARGON2ID": "m=47104,t=1"}))
	require.NoError(t, err)
	assert.Equal(t, "m=47104,t=1,p=1", cfg.Argon2id.String())

	assert.Empty(t, cfg.DebugAddr, "no profiler unless asked for")

	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060", "127.0.0.1:0"} {
		cfg, err := LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": state, "MANA_AUTH_DEBUG_ADDR": addr}))
		require.NoError(t, err, "MANA_AUTH_DEBUG_ADDR=%s", addr)
		assert.Equal(t, addr, cfg.DebugAddr)
	}
}

// startRun runs the real server (run) in the background with env and
// returns its address; the server is stopped, and run's result checked,
// when the test ends.
func startRun(t *testing.T, env map[string]string) (addr string, logs *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	addrCh := make(chan string, 1)
	done := make(chan error, 1)
	env["MANA_AUTH_ADDR"] = "127.0.0.1:0"
	go func() { done <- run(ctx, mapEnv(env), logs, func(a string) { addrCh <- a }) }()
	select {
	case addr = <-addrCh:
	case err := <-done:
		cancel()
		t.Fatalf("run ended before listening: %v\n%s", err, logs)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatalf("run did not listen within 2 minutes\n%s", logs)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "graceful shutdown")
			assert.Contains(t, logs.String(), "stopped")
		case <-time.After(30 * time.Second):
			t.Errorf("run did not return after its context ended")
		}
	})
	return addr, logs
}

func testSigningKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := token.GenerateSigningKey(rand.Reader)
	require.NoError(t, err)
	b, err := k.MarshalPEM()
	require.NoError(t, err)
	return string(b)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, buf.String()
}

func TestRunMigratesServesAndShutsDown(t *testing.T) {
	t.Parallel()
	db := testutil.EmptyDB(t)
	state := t.TempDir()
	addr, logs := startRun(t, map[string]string{
		// Development with a superuser URL: the server migrates with it and
		// logs in as the runtime role on the same database.
		"DATABASE_URL":        db.OwnerURL,
		"MANA_AUTH_STATE_DIR": state,
	})
	code, body := get(t, "http://"+addr+"/readyz")
	assert.Equal(t, http.StatusOK, code, "%s\n%s", body, logs)
	assert.Contains(t, logs.String(), "role="+migrate.RuntimeRole)
	assert.NotContains(t, logs.String(), "debug listener", "no profiler without MANA_AUTH_DEBUG_ADDR")

	var n int
	require.NoError(t, db.Owner.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2", db.Name, migrate.RuntimeRole).Scan(&n))
	assert.Positive(t, n, "the server's pool logs in as %s", migrate.RuntimeRole)
}

func TestRunRefusesSuperuserRuntimeInProduction(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	err := run(context.Background(), mapEnv(map[string]string{
		"MANA_AUTH_ENV":         "production",
		"MANA_AUTH_BASE_URL":    "https://auth.example.com",
		"MANA_AUTH_KEK":         "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
		"MANA_AUTH_SIGNING_KEY": testSigningKeyPEM(t),
		"DATABASE_URL":          db.OwnerURL,
		"MANA_AUTH_STATE_DIR":   t.TempDir(),
	}), &syncBuffer{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "superuser")
}

func TestRunWithSeparateRuntimeAndMigrateURLs(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	addr, logs := startRun(t, map[string]string{
		"MANA_AUTH_ENV":         "production",
		"MANA_AUTH_BASE_URL":    "https://auth.example.com",
		"MANA_AUTH_KEK":         "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
		"MANA_AUTH_SIGNING_KEY": testSigningKeyPEM(t),
		"DATABASE_URL":          db.RuntimeURL,
		"MIGRATE_DATABASE_URL":  db.OwnerURL,
		"MANA_AUTH_STATE_DIR":   t.TempDir(),
	})
	code, body := get(t, "http://"+addr+"/readyz")
	assert.Equal(t, http.StatusOK, code, "%s\n%s", body, logs)
	// Production logs are JSON.
	first, _, _ := strings.Cut(logs.String(), "\n")
	assert.True(t, json.Valid([]byte(first)), "production log line is JSON: %s", first)
	// Without pool_max_conns in DATABASE_URL the pool takes the server's
	// default, not pgxpool's (4 on a small machine).
	code, body = get(t, "http://"+addr+"/metrics")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, fmt.Sprintf("\nmana_auth_db_pool_max_connections %d\n", defaultPoolSize))
}

// TestDebugAddrServesPprofOnItsOwnListener: with MANA_AUTH_DEBUG_ADDR the
// profiler answers there, and never on the API's address (where it would
// be reachable by every client); without it there is no debug listener.
func TestDebugAddrServesPprofOnItsOwnListener(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	addr, logs := startRun(t, map[string]string{
		"DATABASE_URL":         db.RuntimeURL,
		"MIGRATE_DATABASE_URL": db.OwnerURL,
		"MANA_AUTH_STATE_DIR":  t.TempDir(),
		"MANA_AUTH_DEBUG_ADDR": "127.0.0.1:0",
	})
	m := regexp.MustCompile(`msg="debug listener[^"]*" addr=(\S+)`).FindStringSubmatch(logs.String())
	require.Len(t, m, 2, "the debug listener logs its address:\n%s", logs)
	debugAddr := m[1]
	require.NotEqual(t, addr, debugAddr)

	code, body := get(t, "http://"+debugAddr+"/debug/pprof/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "goroutine")
	code, body = get(t, "http://"+debugAddr+"/debug/pprof/heap?debug=1")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "heap profile")

	code, body = get(t, "http://"+addr+"/debug/pprof/")
	assert.Equal(t, http.StatusNotFound, code, "the API address does not serve the profiler")
	assert.Contains(t, body, "NOT_FOUND")
	code, _ = get(t, "http://"+addr+"/debug/pprof/heap")
	assert.Equal(t, http.StatusNotFound, code)
}

// TestPoolSettingsInDatabaseURL: DATABASE_URL may size the pool
// (pool_max_conns, as pgxpool reads it). The one-off connections the
// server opens before its pool (the superuser check) must not send it to
// PostgreSQL as a run-time parameter, which refuses the connection.
func TestPoolSettingsInDatabaseURL(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	sep := "?"
	if strings.Contains(db.RuntimeURL, "?") {
		sep = "&"
	}
	addr, logs := startRun(t, map[string]string{
		"DATABASE_URL":         db.RuntimeURL + sep + "pool_max_conns=3",
		"MIGRATE_DATABASE_URL": db.OwnerURL,
		"MANA_AUTH_STATE_DIR":  t.TempDir(),
	})
	code, body := get(t, "http://"+addr+"/metrics")
	require.Equal(t, http.StatusOK, code, "%s", logs)
	assert.Contains(t, body, "\nmana_auth_db_pool_max_connections 3\n", "the pool is sized by the URL")
}
