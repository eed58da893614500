// Package e2e runs the browser journeys through the reference server's
// hosted pages: the real server binary against a fresh database and an SMTP
// sink, driven by playwright-core in Debian's Chromium (journeys.test.mjs).
//
// Run it with (see README, "Hosted pages"):
//
//	go test -count=1 -v ./e2e/   (runs npm ci in e2e/ first when playwright-core is missing)
//
// TestBrowserJourneys builds examples/server, starts it twice (the main
// server, and one whose daily signup cap is 1 for the "sign-up closed"
// journey), each on its own database from internal/testutil reached
// through a testutil.Proxy the test owns, with mails going to an
// internal/mailtest server. A small HTTP API on 127.0.0.1 lets the
// journeys read mails and cut or restore the database; the journeys get
// its URL and the servers' in environment variables.
package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mana-how/mana-auth/internal/mailtest"
	"github.com/mana-how/mana-auth/internal/testutil"
)

// chromiumPath is Debian's Chromium, overridable with CHROMIUM.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

func TestBrowserJourneys(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the browser journeys build the server and drive Chromium (about a minute)")
	}
	chromium := chromiumPath()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no Chromium at %s (%v): install it with `apt-get install -y chromium`, or set CHROMIUM", chromium, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("no node on PATH: install it with `apt-get install -y nodejs npm`")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		// First run on this machine: install the pinned packages of
		// package-lock.json (playwright-core only; no browser download),
		// so that `go test ./...` needs nothing done by hand.
		npm, lerr := exec.LookPath("npm")
		if lerr != nil {
			t.Fatalf("playwright-core is not installed (%v) and npm is not on PATH: install it with `apt-get install -y nodejs npm`", err)
		}
		t.Logf("playwright-core is not installed: running npm ci in e2e/ (once per checkout)")
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in e2e/ failed: %v\n%s", err, out)
		}
	}

	bin := buildServer(t)
	mails := mailtest.NewServer(t)
	main := startServer(t, bin, mails, nil)
	capped := startServer(t, bin, mails, map[string]string{"MAX_DAILY_SIGNUPS": "1"})
	h := &harness{t: t, mails: mails, main: main, returned: map[int]bool{}}
	api := h.serve()

	shots, err := filepath.Abs("screenshots")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(shots); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "journeys.test.mjs")
	cmd.Env = append(minimalEnv(),
		"E2E_BASE_URL="+main.baseURL,
		"E2E_CAPPED_URL="+capped.baseURL,
		"E2E_HARNESS_URL="+api,
		"E2E_SCREENSHOTS="+shots,
		"CHROMIUM="+chromium,
	)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("journeys (%s):\n%s", time.Since(start).Round(time.Second), out.String())
	t.Logf("screenshots: %s", shots)
	if runErr != nil {
		main.dumpLog(t)
		t.Fatalf("the browser journeys failed: %v", runErr)
	}
	// node --test exits 0 only when every test passed; make sure tests ran.
	if !regexp.MustCompile(`(?m)^ℹ pass [1-9]`).MatchString(out.String()) || !strings.Contains(out.String(), "ℹ fail 0") {
		t.Fatalf("the journeys' output does not report passing tests")
	}
}

// minimalEnv is what the child processes inherit: no DATABASE_URL or other
// setting of the developer's shell may reach the server under test.
func minimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// buildServer builds examples/server into the test's temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mana-auth-server")
	cmd := exec.Command("go", "build", "-o", bin, "./examples/server")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/server: %v\n%s", err, out)
	}
	return bin
}

// server is one running reference server.
type server struct {
	baseURL string
	proxy   *testutil.Proxy
	logPath string
}

// startServer runs bin on a fresh database (reached through a proxy the
// test owns), sending mail to mails, and waits until it is ready. It is
// stopped (SIGTERM, then killed) when the test ends.
func startServer(t *testing.T, bin string, mails *mailtest.Server, extra map[string]string) *server {
	t.Helper()
	db := testutil.DB(t)
	proxy := testutil.NewProxy(t, testutil.ServerAddr(t))
	port := freePort(t)
	s := &server{
		baseURL: fmt.Sprintf("http://localhost:%d", port),
		proxy:   proxy,
		logPath: filepath.Join(t.TempDir(), "server.log"),
	}
	env := map[string]string{
		"MANA_AUTH_ENV":        "development",
		"MANA_AUTH_ADDR":       fmt.Sprintf("127.0.0.1:%d", port),
		"MANA_AUTH_BASE_URL":   s.baseURL, // localhost: a domain, so WebAuthn has an RP ID
		"DATABASE_URL":         proxy.URL(db.RuntimeURL),
		"MIGRATE_DATABASE_URL": db.OwnerURL,
		"MANA_AUTH_STATE_DIR":  t.TempDir(),
		"MANA_AUTH_IP_RATE":    "100000/min", // every journey comes from 127.0.0.1
		"SMTP_URL":             mails.URL().String(),
		"MAIL_FROM":            "auth@example.test",
	}
	for k, v := range extra {
		env[k] = v
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = minimalEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if err := cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Logf("interrupt the server: %v", err)
		}
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Errorf("the server did not stop within 20 s of SIGINT; killing it")
			if err := cmd.Process.Kill(); err != nil {
				t.Logf("kill the server: %v", err)
			}
			<-exited
		}
		if err := logFile.Close(); err != nil {
			t.Logf("close the server log: %v", err)
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-exited:
			s.dumpLog(t)
			t.Fatalf("the server exited before it was ready: %v", err)
		default:
		}
		if s.ready() {
			return s
		}
		if time.Now().After(deadline) {
			s.dumpLog(t)
			t.Fatalf("the server at %s is not ready after 90 s", s.baseURL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var probe = &http.Client{Timeout: 2 * time.Second}

// ready reports whether /readyz answers 200.
func (s *server) ready() bool {
	res, err := probe.Get(s.baseURL + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

func (s *server) dumpLog(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Logf("read the server log: %v", err)
		return
	}
	const max = 20000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	t.Logf("server log (%s), last %d bytes:\n%s", s.baseURL, len(b), b)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// harness is the journeys' loopback API: the mails, and the main server's
// database connection.
type harness struct {
	t     *testing.T
	mails *mailtest.Server
	main  *server

	mu       sync.Mutex
	returned map[int]bool // mails already handed out, by index
}

// serve starts the API on 127.0.0.1 and returns its URL.
//
//	GET  /mail?to=ADDR&path=verify-email  the oldest mail to ADDR with a
//	     <base>/<path>?token= link not handed out before, waiting up to 15 s:
//	     {subject, text, link}; 404 when none came
//	POST /db/cut       the main server's database connections drop and new ones are refused
//	POST /db/restore   connections pass again; answers once /readyz is 200
func (h *harness) serve() string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mail", h.mail)
	mux.HandleFunc("POST /db/cut", func(w http.ResponseWriter, r *http.Request) {
		h.main.proxy.Cut()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /db/restore", func(w http.ResponseWriter, r *http.Request) {
		h.main.proxy.Restore()
		for deadline := time.Now().Add(30 * time.Second); !h.main.ready(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				http.Error(w, "the server is not ready 30 s after the database came back", http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.t.Errorf("harness API: %v", err)
		}
	}()
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			h.t.Logf("harness API shutdown: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func (h *harness) mail(w http.ResponseWriter, r *http.Request) {
	to, path := r.URL.Query().Get("to"), r.URL.Query().Get("path")
	if to == "" || path == "" {
		http.Error(w, "want ?to=ADDR&path=PAGE", http.StatusBadRequest)
		return
	}
	link := regexp.MustCompile(`https?://[^\s<>"']+/` + regexp.QuoteMeta(path) + `\?token=[^\s<>"'&#)]+`)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m, l, ok := h.take(to, link); ok {
			w.Header().Set("Content-Type", "application/json")
			if err := json.NewEncoder(w).Encode(map[string]string{"subject": m.Subject, "text": m.Text, "link": l}); err != nil {
				h.t.Logf("harness: write mail: %v", err)
			}
			return
		}
	}
	var got []string
	for _, m := range h.mails.Messages() {
		got = append(got, strings.Join(m.To, ",")+": "+m.Subject)
	}
	http.Error(w, fmt.Sprintf("no new mail to %s with a /%s link within 15 s; mails so far: %q", to, path, got), http.StatusNotFound)
}

func (h *harness) take(to string, link *regexp.Regexp) (mailtest.Mail, string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, m := range h.mails.Messages() {
		if h.returned[i] {
			continue
		}
		for _, rcpt := range m.To {
			if !strings.EqualFold(rcpt, to) {
				continue
			}
			if l := link.FindString(m.Text); l != "" {
				h.returned[i] = true
				return m, l, true
			}
		}
	}
	return mailtest.Mail{}, "", false
}

// lockedBuffer collects the journeys' output from two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
