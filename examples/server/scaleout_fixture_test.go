package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/migrate"
)

// The fixture of TestScaleOut: the server binary built once, N instances
// of it started at the same moment on one fresh database, their runtime
// pools through a PgBouncer in transaction mode, their rate limits in one
// Redis, and a client that spreads requests over them as a round-robin
// load balancer does.

// clusterConfig is what differs between clusters.
type clusterConfig struct {
	instances  int
	env        map[string]string // on top of the cluster's environment
	bouncerCap int               // PgBouncer default_pool_size
}

// scaleServiceKey is MANA_AUTH_SERVICE_KEY, the credential of API key
// validation, the same on every instance.
const scaleServiceKey = "scale-out-service-key-0123456789abcdef"

// cluster is the running system under test.
type cluster struct {
	t       *testing.T
	db      *testutil.Database
	bouncer *testutil.Bouncer
	redis   *redis.Client
	insts   []*instance
	http    *http.Client
	next    atomic.Uint64 // round robin
	// rechecks counts the password re-checks the cases make (they record
	// a successful attempt and start no session).
	rechecks atomic.Int64

	mu  sync.Mutex
	ips map[string]bool // every client address sent in X-Forwarded-For (their Redis keys are deleted at the end)
}

// instance is one server process.
type instance struct {
	name    string // A, B, C, …
	proc    *testutil.Process
	base    string // http://127.0.0.1:port
	started time.Time
	down    atomic.Bool // taken out of the rotation (killed)
	// inflight counts requests sent and not yet answered, by route.
	inflight sync.Map // string → *atomic.Int64
}

func (in *instance) flight(route string) *atomic.Int64 {
	v, _ := in.inflight.LoadOrStore(route, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// buildServer builds this package's binary into a temporary directory,
// once per test binary, without the race detector: argon2id runs about
// four times slower under it, and the server's own races are the business
// of the in-process tests, which do run under -race.
func buildServer(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "mana-auth-server")
	start := time.Now()
	// The environment's own settings (CGO_ENABLED, GOFLAGS): the build
	// then reuses what go vet and the test build left in the build cache.
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	t.Logf("built the server in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// startCluster starts cfg.instances servers at the same moment on a fresh,
// empty database. The test holds the migrations' advisory lock until every
// instance waits for it, then lets go: the instances race for it from the
// same starting line, one applies the migrations, the others wait and
// find nothing to do (checked by checkMigrations).
func startCluster(t *testing.T, bin string, cfg clusterConfig) *cluster {
	t.Helper()
	ctx := context.Background()
	c := &cluster{t: t, db: testutil.EmptyDB(t), ips: map[string]bool{}}
	c.bouncer = testutil.PgBouncer(t, c.db, testutil.BouncerOptions{PoolSize: cfg.bouncerCap})
	c.redis = scaleRedis(t)
	t.Cleanup(c.forgetIPs)
	c.http = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}}
	t.Cleanup(c.http.CloseIdleConnections)

	keyPEM := testSigningKeyPEM(t)
	kek := make([]byte, 32)
	_, err := rand.Read(kek)
	require.NoError(t, err)
	// Every instance shares the signing key and the KEK (docs/deploy.md);
	// only the state directory is its own.
	env := map[string]string{
		"MANA_AUTH_ENV":                        "production",
		"MANA_AUTH_ADDR":                       "127.0.0.1:0",
		"MANA_AUTH_BASE_URL":                   e2eSecureBaseURL, // https: passkeys on, for e2eAuthenticator's origin
		"DATABASE_URL":                         c.bouncer.RuntimeURL,
		"MIGRATE_DATABASE_URL":                 c.db.OwnerURL,
		"REDIS_URL":                            redisURL(c.redis.Options()),
		"MANA_AUTH_SIGNING_KEY":                keyPEM,
		"MANA_AUTH_KEK":                        base64.StdEncoding.EncodeToString(kek),
		"MANA_AUTH_TRUSTED_PROXIES":            "127.0.0.1/32",
		"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION": "false",
		"MANA_AUTH_SERVICE_KEY":                scaleServiceKey,
	}
	for k, v := range cfg.env {
		env[k] = v
	}

	// Hold the lock the migrator takes, on a direct connection.
	lockConn, err := c.db.Owner.Acquire(ctx)
	require.NoError(t, err)
	defer lockConn.Release()
	_, err = lockConn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrate.DefaultLockKey)
	require.NoError(t, err)
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			_, err := lockConn.Exec(ctx, "SELECT pg_advisory_unlock($1)", migrate.DefaultLockKey)
			require.NoError(t, err)
		}
	}
	defer unlock()

	for i := range cfg.instances {
		name := string(rune('A' + i))
		cmd := exec.Command(bin)
		cmd.Env = []string{"MANA_AUTH_STATE_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		in := &instance{name: name, started: time.Now()}
		in.proc = testutil.StartProcess(t, cmd)
		c.insts = append(c.insts, in)
	}
	t.Logf("%d instances started within %v", cfg.instances, time.Since(c.insts[0].started).Round(time.Microsecond))
	t.Cleanup(func() {
		if t.Failed() {
			for _, in := range c.insts {
				t.Logf("instance %s output:\n%s", in.name, in.proc.Output())
			}
		}
	})

	// Every instance waits for the lock: they all reached it before any
	// could migrate.
	waitFor(t, 60*time.Second, "every instance waiting for the migration lock", func() bool {
		var waiting int
		require.NoError(t, c.db.Owner.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting))
		for _, in := range c.insts {
			require.False(t, in.proc.Exited(), "instance %s exited while waiting for the lock:\n%s", in.name, in.proc.Output())
		}
		return waiting == cfg.instances
	})
	unlock()

	for _, in := range c.insts {
		in.proc.WaitOutput(t, `"msg":"listening"`, 2*time.Minute)
		for _, l := range logLines(in.proc.Output()) {
			if l["msg"] == "listening" {
				in.base = "http://" + l["addr"].(string)
			}
		}
		require.NotEmpty(t, in.base, "instance %s logged no address", in.name)
	}
	for _, in := range c.insts {
		waitFor(t, 30*time.Second, "instance "+in.name+" ready", func() bool {
			r := c.sendTo(in, "GET", "/readyz", nil)
			return r.err == nil && r.status == http.StatusOK
		})
	}
	return c
}

// scaleRedis is a client of the test Redis (testutil.RedisURL). The server's limiter keys hold the client
// address ("mana-auth:rl:ip:<address>", …) and every request of the test
// carries an address of its own (random in 2001:db8::/32), so other tests
// sharing this Redis never meet its keys; they are deleted at the end.
func scaleRedis(t *testing.T) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	require.NoError(t, err)
	c := redis.NewClient(opts)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close redis client: %v", err)
		}
	})
	return c
}

// redisURL is o as a REDIS_URL for the instances.
func redisURL(o *redis.Options) string {
	u := url.URL{Scheme: "redis", Host: o.Addr, Path: "/" + strconv.Itoa(o.DB)}
	if o.TLSConfig != nil {
		u.Scheme = "rediss"
	}
	if o.Username != "" || o.Password != "" {
		u.User = url.UserPassword(o.Username, o.Password)
	}
	return u.String()
}

const limiterKeyPrefix = "mana-auth:rl:ip:" // the server's per-IP limit: its prefix and manaauth's key

// ipKeyPrefixes are the server's limiter keys of a client address (the
// per-IP limit, passkey options); they are deleted at the end.
var ipKeyPrefixes = []string{limiterKeyPrefix, "mana-auth:rl:passkey-options:ip:"}

func (c *cluster) forgetIPs() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pipe := c.redis.Pipeline()
	for ip := range c.ips {
		for _, p := range ipKeyPrefixes {
			pipe.Del(ctx, p+ip)
		}
	}
	if len(c.ips) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			c.t.Errorf("delete the test's limiter keys: %v", err)
		}
	}
}

// newIP returns a client address never used before, remembered for the
// cleanup.
func (c *cluster) newIP() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8 // 2001:db8::/32, the documentation prefix
	ip := netip.AddrFrom16([16]byte(b)).String()
	c.mu.Lock()
	c.ips[ip] = true
	c.mu.Unlock()
	return ip
}

// reply is one answer, or the transport error that prevented it.
type reply struct {
	inst   *instance
	status int
	code   string // error.code of an error envelope
	body   []byte
	err    error
}

func (r reply) String() string {
	if r.err != nil {
		return fmt.Sprintf("%s: %v", r.inst.name, r.err)
	}
	return fmt.Sprintf("%s: %d %s", r.inst.name, r.status, bytes.TrimSpace(r.body))
}

// pick is the next instance in the rotation, skipping those taken out.
func (c *cluster) pick() *instance {
	for range 2 * len(c.insts) {
		in := c.insts[c.next.Add(1)%uint64(len(c.insts))]
		if !in.down.Load() {
			return in
		}
	}
	panic("no instance left in the rotation")
}

// send sends one request to the next instance of the rotation with a
// client address of its own (X-Forwarded-For; 127.0.0.1 is a trusted
// proxy), unless opts set one.
func (c *cluster) send(method, path string, body any, opts ...reqOpt) reply {
	return c.sendTo(c.pick(), method, path, body, opts...)
}

// sendTo sends one request to in. It never fails the test: transport
// errors are in reply.err. Like a well-behaved client it honours the
// server's load shedding: a 503 with Retry-After (a burst of password
// checks beyond what the hasher runs and queues, refused before it
// reached the lockout gate or the database) is sent again after the
// pause it asks for, so the cases count what the server decided, not
// what it declined to look at.
func (c *cluster) sendTo(in *instance, method, path string, body any, opts ...reqOpt) reply {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{inst: in, err: err}
		}
		payload = b
	}
	ip := c.newIP()
	for try := 0; ; try++ {
		r, retryAfter := c.sendOnce(in, method, path, payload, ip, opts...)
		if r.err != nil || r.status != http.StatusServiceUnavailable || retryAfter <= 0 || try == 60 {
			return r
		}
		time.Sleep(retryAfter + time.Duration(mrand.Int64N(int64(retryAfter))))
	}
}

// sendOnce sends the request once and returns the answer and its
// Retry-After (0 when absent).
func (c *cluster) sendOnce(in *instance, method, path string, payload []byte, ip string, opts ...reqOpt) (reply, time.Duration) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequest(method, in.base+path, rd)
	if err != nil {
		return reply{inst: in, err: err}, 0
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Forwarded-For", ip)
	for _, o := range opts {
		o(req.Header)
	}
	f := in.flight(method + " " + path)
	f.Add(1)
	defer f.Add(-1)
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{inst: in, err: err}, 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := reply{inst: in, status: resp.StatusCode, body: b, err: err}
	if resp.StatusCode >= 400 {
		var e envelope
		if json.Unmarshal(b, &e) == nil {
			r.code = e.Error.Code
		}
	}
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return r, time.Duration(secs) * time.Second
}

// expect sends and fails the test unless the answer has status want (and,
// for an error, code).
func (c *cluster) expect(t *testing.T, in *instance, want int, code, method, path string, body any, opts ...reqOpt) reply {
	t.Helper()
	var r reply
	if in == nil {
		r = c.send(method, path, body, opts...)
	} else {
		r = c.sendTo(in, method, path, body, opts...)
	}
	require.NoError(t, r.err, "%s %s", method, path)
	require.Equal(t, want, r.status, "%s %s on %s: %s", method, path, r.inst.name, r.body)
	if code != "" {
		require.Equal(t, code, r.code, "%s %s on %s: %s", method, path, r.inst.name, r.body)
	}
	return r
}

// live are the instances still in the rotation.
func (c *cluster) live() []*instance {
	var out []*instance
	for _, in := range c.insts {
		if !in.down.Load() {
			out = append(out, in)
		}
	}
	return out
}

// logLines parses an instance's JSON log (production mode), skipping
// lines that are not JSON.
func logLines(out string) []map[string]any {
	var lines []map[string]any
	for _, l := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pool is the database as its owner, for the checks.
func (c *cluster) pool() *pgxpool.Pool { return c.db.Owner }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
