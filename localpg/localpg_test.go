package localpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// machineURL is the PostgreSQL every developer machine and CI job of this
// project runs (design.md, Testing).
const machineURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// testLogger sends Find's progress lines to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// deadPort returns a port nothing listens on.
func deadPort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	require.NoError(t, err)
	return port
}

func portOf(t testing.TB, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err, "URL %s", rawURL)
	return port
}

func refuses(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return true
	}
	_ = c.Close() // only the dial mattered
	return false
}

// connect opens a connection closed at the end of the test.
func connect(t testing.TB, connURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	require.NoError(t, err, "connect %s", connURL)
	t.Cleanup(func() { assert.NoError(t, conn.Close(context.Background())) })
	return conn
}

func requireSuperuser(t testing.TB, connURL string) {
	t.Helper()
	var super bool
	err := connect(t, connURL).QueryRow(context.Background(),
		"SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super)
	require.NoError(t, err)
	require.True(t, super, "%s does not log in as a superuser", connURL)
}

func TestFindEnv(t *testing.T) {
	ctx := context.Background()
	const v = "LOCALPG_TEST_DATABASE_URL"

	t.Run("answers", func(t *testing.T) {
		t.Setenv(v, machineURL)
		s, err := Find(ctx, Options{EnvVar: v, SkipLocal: true, NoCluster: true})
		require.NoError(t, err)
		assert.Equal(t, SourceEnv, s.Source)
		assert.Equal(t, machineURL, s.URL)
		require.NoError(t, s.Close())
	})

	t.Run("dead port names the variable and does not fall through", func(t *testing.T) {
		t.Setenv(v, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", deadPort(t)))
		start := time.Now()
		s, err := Find(ctx, Options{EnvVar: v})
		require.Error(t, err)
		assert.Nil(t, s)
		// The message is the contract here: it must tell which setting is wrong.
		assert.Contains(t, err.Error(), v)
		assert.NotErrorIs(t, err, ErrNotFound)
		// Bounds here tell "gives up after its timeout" from "hangs"; they
		// are wide so that a loaded machine does not fail them.
		assert.Less(t, time.Since(start), envTimeout+20*time.Second)
	})

	t.Run("empty is unset", func(t *testing.T) {
		t.Setenv(v, "")
		s, err := Find(ctx, Options{EnvVar: v, NoCluster: true})
		require.NoError(t, err)
		assert.Equal(t, SourceLocal, s.Source)
	})
}

func TestFindLocal(t *testing.T) {
	s, err := Find(context.Background(), Options{Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	assert.Equal(t, SourceLocal, s.Source)
	assert.Contains(t, s.URL, "sslmode=disable")
	assert.Empty(t, s.Dir)
	requireSuperuser(t, s.URL)
}

func TestFindNothing(t *testing.T) {
	ctx := context.Background()

	t.Run("every step disabled", func(t *testing.T) {
		_, err := Find(ctx, Options{EnvVar: "LOCALPG_UNSET_VARIABLE", SkipLocal: true, NoCluster: true})
		require.ErrorIs(t, err, ErrNotFound)
		assert.NotContains(t, err.Error(), "\n")
		assert.Contains(t, err.Error(), "LOCALPG_UNSET_VARIABLE", "the message says what to set")
	})

	t.Run("no binaries and no container engine", func(t *testing.T) {
		t.Setenv("PATH", "")
		start := time.Now()
		_, err := find(ctx, Options{SkipLocal: true, Logger: testLogger(t),
			Container: &fakeContainer{unavailable: errors.New("no engine")}}, nil)
		require.ErrorIs(t, err, ErrNotFound)
		assert.NotContains(t, err.Error(), "\n")
		assert.Contains(t, err.Error(), "cluster: ")
		assert.Contains(t, err.Error(), "container: ")
		assert.Contains(t, err.Error(), "DATABASE_URL")
		assert.Less(t, time.Since(start), 30*time.Second, "gives up instead of hanging")
		t.Log(err)
	})
}

func TestURLFor(t *testing.T) {
	tests := []struct {
		name, base, db, user, password, want string
	}{
		{"tcp", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "app", "svc", "",
			"postgres://svc@127.0.0.1:5432/app?sslmode=disable"},
		{"password is escaped", "postgres://postgres:x@127.0.0.1:6000/postgres?sslmode=disable", "app", "svc", "p@ss/w:rd",
			"postgres://svc:p%40ss%2Fw%3Ard@127.0.0.1:6000/app?sslmode=disable"},
		{"socket", "postgres://postgres@/postgres?host=%2Fvar%2Frun%2Fpostgresql&sslmode=disable", "app", "svc", "",
			"postgres://svc@/app?host=%2Fvar%2Frun%2Fpostgresql&sslmode=disable"},
		{"query overrides are dropped", "postgresql://h:1/postgres?user=postgres&dbname=postgres&sslmode=require", "app", "svc", "pw",
			"postgresql://svc:pw@h:1/app?sslmode=require"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := (&Server{URL: tc.base}).URLFor(tc.db, tc.user, tc.password)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got, "URLFor(%q, %q, %q) on %s", tc.db, tc.user, tc.password, tc.base)
		})
	}

	t.Run("keyword/value strings are refused", func(t *testing.T) {
		_, err := (&Server{URL: "host=localhost user=postgres password=secret"}).URLFor("app", "svc", "")
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "secret")
	})
	t.Run("database and user are required", func(t *testing.T) {
		_, err := (&Server{URL: machineURL}).URLFor("", "svc", "")
		require.Error(t, err)
		_, err = (&Server{URL: machineURL}).URLFor("app", "", "")
		require.Error(t, err)
	})
}

// childPrefix starts the line a child process prints its result on.
const childPrefix = "LOCALPG_CHILD_RESULT "

// TestHelperChild is not a test of its own: it is the body of the child
// process that TestThrowawayDiesWithParent starts, and returns at once otherwise.
func TestHelperChild(t *testing.T) {
	switch os.Getenv("LOCALPG_CHILD") {
	case "throwaway":
		s, err := Find(context.Background(), Options{SkipLocal: true})
		require.NoError(t, err)
		fmt.Printf("%s%s %s\n", childPrefix, s.URL, s.Dir)
		// Wait for the parent, then exit without Close.
		_, err = os.Stdin.Read(make([]byte, 1))
		require.Error(t, err, "stdin should reach EOF")
	}
}

// fakeContainer is a ContainerStep that records its calls.
type fakeContainer struct {
	unavailable error
	stops       int
}

func (f *fakeContainer) Available(context.Context) error { return f.unavailable }

func (f *fakeContainer) Start(context.Context, *slog.Logger) (string, func() error, error) {
	return machineURL, func() error { f.stops++; return nil }, nil
}

// TestContainerStep: Options.Container is the last step — taken when the
// others are skipped, stopped once by Close — and an engine that is not
// available is one of the reasons of the not-found error. Without the
// step Find looks for no container at all.
func TestContainerStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := &fakeContainer{}
	s, err := Find(ctx, Options{SkipLocal: true, NoCluster: true, Container: fake})
	require.NoError(t, err)
	assert.Equal(t, SourceContainer, s.Source)
	assert.Equal(t, machineURL, s.URL)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	assert.Equal(t, 1, fake.stops, "Close stops the container once")

	fake = &fakeContainer{unavailable: errors.New("no engine here")}
	_, err = Find(ctx, Options{SkipLocal: true, NoCluster: true, Container: fake})
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "container: no engine here")

	_, err = Find(ctx, Options{SkipLocal: true, NoCluster: true})
	require.ErrorIs(t, err, ErrNotFound)
	assert.NotContains(t, err.Error(), "container", "no container step was configured")
}
