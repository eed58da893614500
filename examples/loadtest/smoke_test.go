package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
)

// The CI smoke run: the real reference server, built from this tree and
// started as its own process on a fresh database, loaded by every
// scenario for a few seconds at low concurrency. It asserts only that
// nothing failed — figures are for docs/capacity.md, not for tests — so
// that neither the harness nor a route it loads can rot unnoticed.

// refServer is a running reference server.
type refServer struct {
	url  string
	pid  int
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startRefServer builds examples/server (with -race when this test runs
// with it, sharing the test's build cache) and starts it on db in
// development mode, on a port of its own choosing, with the settings the
// harness needs. It is stopped with SIGTERM when the test ends, and must
// then shut down cleanly.
func startRefServer(t *testing.T, db *testutil.Database) *refServer {
	t.Helper()
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the smoke run builds the server with the go tool")
	bin := filepath.Join(t.TempDir(), "server")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goTool, append(args, ".")...)
	build.Dir = filepath.Join("..", "server")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build examples/server:\n%s", out)

	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"GORACE=halt_on_error=1",
		"DATABASE_URL=" + db.RuntimeURL,
		"MIGRATE_DATABASE_URL=" + db.OwnerURL,
		"MANA_AUTH_ADDR=127.0.0.1:0",
		"MANA_AUTH_STATE_DIR=" + t.TempDir(),
		"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION=false",
		"MANA_AUTH_IP_RATE=0",
		"MANA_AUTH_PASSKEY_OPTIONS_RATE=0",
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &refServer{pid: cmd.Process.Pid, logs: &lockedBuffer{}}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = s.logs.Write([]byte(line + "\n")) // a lockedBuffer never fails
			if a, ok := listenAddr(line); ok && !found {
				found = true
				addr <- a
			}
		}
		// The pipe ends with the process; drain it before Wait.
		_, _ = io.Copy(io.Discard, stderr) // nothing is left to read after Scan stopped at EOF
		exited <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-exited:
		t.Fatalf("the server exited before listening: %v\n%s", err, s.logs)
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill() // the test fails anyway; Kill's error adds nothing
		t.Fatalf("the server did not listen within 2 minutes\n%s", s.logs)
	}
	t.Cleanup(func() {
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case err := <-exited:
			assert.NoError(t, err, "graceful shutdown\n%s", s.logs)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill() // reported below
			t.Errorf("the server did not stop within 30 s of SIGTERM")
		}
		assert.NotContains(t, s.logs.String(), "DATA RACE")
		assert.NotContains(t, s.logs.String(), "level=ERROR", "an error logged by the server under load")
	})
	return s
}

// listenAddr finds the address in the server's "listening" log line
// (text format: msg=listening addr=127.0.0.1:PORT ...).
func listenAddr(line string) (string, bool) {
	if !strings.Contains(line, "msg=listening") {
		return "", false
	}
	for f := range strings.FieldsSeq(line) {
		if a, ok := strings.CutPrefix(f, "addr="); ok {
			return a, true
		}
	}
	return "", false
}

// runJSON runs the harness with args plus -json and returns its exit
// code, report and progress output.
func runJSON(t *testing.T, args ...string) (int, Report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "-json"), &stdout, &stderr)
	var rep Report
	if code != exitUsage && stdout.Len() > 0 {
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), "report: %s\nstderr: %s", stdout.Bytes(), stderr.Bytes())
	}
	return code, rep, stderr.String()
}

// TestSmoke starts one server for all of its parts.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the reference server and loads it for about 30 s; skipped under -short")
	}
	srv := startRefServer(t, testutil.DB(t))
	t.Run("every scenario", func(t *testing.T) { smokeEveryScenario(t, srv) })
	t.Run("open loop", func(t *testing.T) { smokeOpenLoop(t, srv) })
	t.Run("failures are counted", func(t *testing.T) { smokeCountsFailures(t, srv) })
}

func smokeEveryScenario(t *testing.T, srv *refServer) {
	for _, sc := range scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			args := []string{"-url", srv.url, "-scenario", sc.Name, "-c", "2", "-users", "2",
				"-d", "3s", "-warmup", "300ms", "-bound", "300ms", "-progress", "1s", "-pid", strconv.Itoa(srv.pid)}
			code, rep, stderr := runJSON(t, args...)
			require.Equal(t, exitOK, code, "exit code; stderr:\n%s\nserver:\n%s", stderr, srv.logs)
			assert.Zero(t, rep.Errors, "failures: %+v", rep.Failures)
			assert.Zero(t, rep.Shed, "at c=2 nothing is shed: %+v", rep.Failures)
			assert.Positive(t, rep.OK, "successful answers")
			assert.Equal(t, rep.Requests, rep.OK)
			assert.Positive(t, rep.Latency.P99)
			assert.Contains(t, stderr, " requests ", "the progress line")
			require.NotNil(t, rep.Memory, "server memory read from /proc: %v", rep.Notes)
			assert.Positive(t, rep.Memory.AfterMiB)
			assert.Positive(t, rep.Memory.HWMMiB)
			switch sc.Name {
			case "login":
				require.NotNil(t, rep.Bound, "login measures the hash bound")
				assert.Positive(t, rep.Bound.PerSecond)
				assert.Positive(t, rep.Bound.ReachedPct)
			case "mixed":
				// In 3 s at c=2 every kind of the blend comes round
				// (each slot walks a 271-call cycle).
				var kinds []string
				for _, k := range rep.Kinds {
					kinds = append(kinds, k.Kind)
				}
				assert.Subset(t, kinds, []string{"refresh", "validate", "profile"})
			case "passkey-login":
				// Both steps succeed: the options are read, and the
				// assertions verify.
				ok := map[string]int64{}
				for _, k := range rep.Kinds {
					ok[k.Kind] = k.OK.Count
				}
				assert.Positive(t, ok["options"], "successful options: %+v", rep.Kinds)
				assert.Positive(t, ok["verify"], "successful verifies: %+v", rep.Kinds)
			}
		})
	}
}

// The open loop (vegeta) is another path through the harness: a mixed
// blend at a fixed rate, whose refresh chains continue through the round
// tripper.
func smokeOpenLoop(t *testing.T, srv *refServer) {
	code, rep, stderr := runJSON(t, "-url", srv.url, "-scenario", "mixed", "-rate", "150", "-c", "4", "-users", "2",
		"-d", "3s", "-warmup", "300ms", "-progress", "0")
	require.Equal(t, exitOK, code, "exit code; stderr:\n%s\nserver:\n%s", stderr, srv.logs)
	assert.Equal(t, "open", rep.Mode)
	assert.Zero(t, rep.Errors, "failures: %+v", rep.Failures)
	assert.Zero(t, rep.Shed)
	// 150/s for 3 s, give or take the ticks at the edges of the window.
	assert.InDelta(t, 450, rep.Requests, 30, "requests sent at the fixed rate")
	for _, k := range rep.Kinds {
		if k.Kind == "refresh" {
			assert.Positive(t, k.OK.Count, "refresh chains continue in the open loop")
		}
	}
	require.NotNil(t, rep.Memory, "server memory from /metrics: %v", rep.Notes)
	assert.Equal(t, srv.url+"/metrics", rep.Memory.Source)
	assert.Positive(t, rep.Memory.AfterMiB)
}

// smokeCountsFailures is the negative control of the smoke run: a
// scenario that replays a refresh token whose child was already spent is
// refused by the server's reuse detection, and the harness must count
// those answers as failures by status and code. If it counted every
// answer as a success, smokeEveryScenario could not fail.
func smokeCountsFailures(t *testing.T, srv *refServer) {
	replay := Scenario{Name: "replay", Prepare: func(ctx context.Context, env *Env) (Source, error) {
		accts, err := env.Users(ctx)
		if err != nil {
			return nil, err
		}
		// Spend the first token and its child: replaying the first is
		// then a reuse, outside the grace window's "child not used yet".
		token := accts[0].First.Refresh
		next := token
		for range 2 {
			var p tokenPair
			if err := env.api.do(ctx, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refreshToken": next},
				http.StatusOK, &p); err != nil {
				return nil, err
			}
			next = p.RefreshToken
		}
		return SourceFunc(func(int) Call {
			return Call{Kind: "refresh", Method: http.MethodPost, Path: "/api/v1/auth/refresh", Want: http.StatusOK,
				Body: mustJSON(map[string]string{"refreshToken": token})}
		}), nil
	}}
	target, err := checkTarget(srv.url, "")
	require.NoError(t, err)
	cfg := config{target: target, scenario: replay, c: 1, users: 1, d: time.Second, timeout: 10 * time.Second, seedC: 1}
	rep, err := load(context.Background(), cfg, io.Discard)
	require.NoError(t, err)
	require.Positive(t, rep.Requests)
	assert.Equal(t, rep.Requests, rep.Errors, "every replay after the first is refused: %+v", rep.Failures)
	require.NotEmpty(t, rep.Failures)
	assert.Equal(t, http.StatusUnauthorized, rep.Failures[0].Status)
	assert.Equal(t, "TOKEN_INVALID", rep.Failures[0].Code)
}
