package autherr_test

// These tests take their errors from a real PostgreSQL (and a real dial),
// so the classifier is pinned to the shapes pgx v5 actually returns, not to
// hand-built look-alikes. They live in the external test package and import
// nothing of ours besides autherr: other packages' test helpers import
// autherr, so autherr's tests must not import them back.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"github.com/mana-how/mana-auth/autherr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// adminURL is the PostgreSQL these tests use: TEST_DATABASE_URL, else the
// local server with trust auth.
func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres"
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL (TEST_DATABASE_URL or 127.0.0.1:5432); skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err, "connect to %s", url)
	t.Cleanup(func() {
		if err := conn.Close(context.Background()); err != nil {
			t.Errorf("close connection: %v", err)
		}
	})
	return conn
}

// scratchDB creates a database of its own for the test and drops it after.
func scratchDB(t *testing.T) string {
	t.Helper()
	admin := connect(t, adminURL())
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	name := "autherr_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	_, err := admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return replaceDatabase(adminURL(), name)
}

// replaceDatabase swaps the database name of a postgres:// URL.
func replaceDatabase(url, db string) string {
	i := strings.LastIndex(url, "/")
	q := ""
	if j := strings.Index(url[i:], "?"); j >= 0 {
		q = url[i+j:]
	}
	return url[:i+1] + db + q
}

// quiet answers errors without logging them.
func quiet() autherr.Writer { return autherr.Writer{Logger: slog.New(slog.DiscardHandler)} }

// closedPortURL is a connection string to a port nobody listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "postgres://postgres@" + addr + "/postgres?connect_timeout=5"
}

func writeBody(t *testing.T, err error) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	quiet().Write(rec, httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", nil), err)
	return rec.Code, rec.Body.String()
}

// TestPostgresMissingColumn is the incident against a real server: the
// query names a column the table does not have. If 42703 classified as
// anything but SERVICE_UNAVAILABLE, or counted toward lockout, it fails.
func TestPostgresMissingColumn(t *testing.T) {
	conn := connect(t, adminURL())
	ctx := context.Background()
	_, err := conn.Exec(ctx, "CREATE TEMP TABLE users (id bigint PRIMARY KEY)")
	require.NoError(t, err)

	var id int64
	qErr := conn.QueryRow(ctx, "SELECT id FROM users WHERE email = $1", "a@example.com").Scan(&id)
	require.Error(t, qErr)
	var pg *pgconn.PgError
	require.ErrorAs(t, qErr, &pg)
	assert.Equal(t, "42703", pg.Code)
	assert.Equal(t, `column "email" does not exist`, pg.Message)

	err = fmt.Errorf("login: %w", fmt.Errorf("find user: %w", qErr))
	e := autherr.Classify(err)
	assert.Equal(t, autherr.ServiceUnavailable, e.Code)
	assert.False(t, autherr.CountsTowardLockout(err))
	assert.True(t, autherr.IsUnavailable(err))

	status, body := writeBody(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	for _, leak := range []string{"42703", "email", "users", "SQLSTATE", "column"} {
		assert.NotContains(t, body, leak)
	}
}

// TestDialClosedPort: nothing listens; pgx returns a *pgconn.ConnectError
// over ECONNREFUSED. If ConnectError or the errno fell through to INTERNAL,
// it fails.
func TestDialClosedPort(t *testing.T) {
	if testing.Short() {
		t.Skip("dials the network; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, closedPortURL(t))
	if err == nil {
		_ = conn.Close(ctx) // best effort; the test fails on the next line
	}
	require.Error(t, err)
	var ce *pgconn.ConnectError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(fmt.Errorf("login: %w", err)))
	assert.False(t, autherr.CountsTowardLockout(err))
	status, body := writeBody(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.NotContains(t, body, "127.0.0.1")
}

// TestUnknownDatabaseAndRole: the server refuses the login (3D000, 28000)
// inside a ConnectError: a deployment fault, SERVICE_UNAVAILABLE.
func TestUnknownDatabaseAndRole(t *testing.T) {
	connect(t, adminURL()) // skip under -short, and prove the server is up
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, url := range map[string]string{
		"3D000": replaceDatabase(adminURL(), "autherr_no_such_database"),
		"28000": strings.Replace(replaceDatabase(adminURL(), "postgres"), "postgres@", "autherr_no_such_role@", 1),
	} {
		_, err := pgx.Connect(ctx, url)
		var pg *pgconn.PgError
		require.ErrorAsf(t, err, &pg, "%s: connect to %s", name, url)
		assert.Equal(t, name, pg.Code)
		assert.Equalf(t, autherr.ServiceUnavailable, autherr.CodeOf(err), "%s", name)
	}
}

// TestConnectRefusedByTargetSessionAttrs: the server accepts the login but
// pgx's check of target_session_attrs refuses it (a primary where a standby
// was asked for: a failover or a wrong DSN). The ConnectError's cause is a
// plain error, not a network or PostgreSQL one; the outcome must still be
// SERVICE_UNAVAILABLE. If autherr recognised ConnectError only through its
// cause, it fails.
func TestConnectRefusedByTargetSessionAttrs(t *testing.T) {
	admin := connect(t, adminURL()) // skip under -short, and prove the server is up
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var standby bool
	require.NoError(t, admin.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby))
	attrs := "standby"
	if standby {
		attrs = "primary"
	}
	sep := "?"
	if strings.Contains(adminURL(), "?") {
		sep = "&"
	}
	_, err := pgx.Connect(ctx, adminURL()+sep+"target_session_attrs="+attrs)
	var ce *pgconn.ConnectError
	require.ErrorAs(t, err, &ce, "target_session_attrs=%s", attrs)
	require.Equal(t, autherr.Internal, autherr.CodeOf(ce.Unwrap()),
		"the cause alone must classify INTERNAL, or this test does not test ConnectError: %v", ce.Unwrap())
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(fmt.Errorf("login: %w", err)))
	assert.False(t, autherr.CountsTowardLockout(autherr.Wrap(autherr.InvalidCredentials, err, "")))
}

// TestClosedPool pins the sentinel a closed pgxpool returns
// (puddle.ErrClosedPool). If pgx changed it, or the classifier stopped
// recognizing it, it fails.
func TestClosedPool(t *testing.T) {
	connect(t, adminURL())
	pool, err := pgxpool.New(context.Background(), adminURL())
	require.NoError(t, err)
	pool.Close()
	_, err = pool.Exec(context.Background(), "SELECT 1")
	require.ErrorIs(t, err, puddle.ErrClosedPool)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(fmt.Errorf("lockout: check: %w", err)))
}

// TestTerminatedBackend: an operator (or a failover) kills the session.
// The first error is 57P01, later ones "conn closed"; both are
// SERVICE_UNAVAILABLE.
func TestTerminatedBackend(t *testing.T) {
	admin := connect(t, adminURL())
	victim := connect(t, adminURL())
	ctx := context.Background()
	var pid uint32
	require.NoError(t, victim.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	var ok bool
	require.NoError(t, admin.QueryRow(ctx, "SELECT pg_terminate_backend($1, 5000)", pid).Scan(&ok))
	require.True(t, ok)

	_, err := victim.Exec(ctx, "SELECT 1")
	var pg *pgconn.PgError
	require.ErrorAs(t, err, &pg)
	assert.Equal(t, "57P01", pg.Code)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err))

	_, err = victim.Exec(ctx, "SELECT 1")
	require.ErrorIs(t, err, pgconn.ErrConnClosed)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err))
}

// TestStatementTimeoutAndDeadline: the server cancels (57014), or our
// context deadline fires (pgconn's timeout error); both are
// SERVICE_UNAVAILABLE, and a cancelled request context too.
func TestStatementTimeoutAndDeadline(t *testing.T) {
	conn := connect(t, adminURL())
	ctx := context.Background()

	_, err := conn.Exec(ctx, "SET statement_timeout = 50")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT pg_sleep(5)")
	var pg *pgconn.PgError
	require.ErrorAs(t, err, &pg)
	assert.Equal(t, "57014", pg.Code)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err))

	deadlined := connect(t, adminURL())
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = deadlined.Exec(dctx, "SELECT pg_sleep(5)")
	cancel()
	require.True(t, pgconn.Timeout(err), "want a pgconn timeout, got %T %v", err, err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err))

	canceled := connect(t, adminURL())
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	_, err = canceled.Exec(cctx, "SELECT pg_sleep(5)")
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err))
	assert.False(t, autherr.CountsTowardLockout(err), "a client that went away must not count toward lockout")
}

// TestUniqueViolation: 23505 on an email constraint is
// EMAIL_ALREADY_REGISTERED, on another constraint CONFLICT.
func TestUniqueViolation(t *testing.T) {
	conn := connect(t, adminURL())
	ctx := context.Background()
	_, err := conn.Exec(ctx, `CREATE TEMP TABLE users (
		id bigint CONSTRAINT users_pkey PRIMARY KEY,
		email text NOT NULL CONSTRAINT users_email_key UNIQUE)`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "INSERT INTO users VALUES (1, 'a@example.com')")
	require.NoError(t, err)

	_, err = conn.Exec(ctx, "INSERT INTO users VALUES (2, 'a@example.com')")
	assert.Equal(t, autherr.EmailAlreadyRegistered, autherr.CodeOf(fmt.Errorf("register: %w", err)))
	status, body := writeBody(t, err)
	assert.Equal(t, http.StatusConflict, status)
	assert.NotContains(t, body, "a@example.com")
	assert.NotContains(t, body, "users_email_key")

	_, err = conn.Exec(ctx, "INSERT INTO users VALUES (1, 'b@example.com')")
	assert.Equal(t, autherr.Conflict, autherr.CodeOf(err))

	_, err = conn.Exec(ctx, "INSERT INTO users (id) VALUES (3)")
	assert.Equal(t, autherr.Internal, autherr.CodeOf(err), "NOT NULL violation is a bug")
}

// TestSerializationFailure: two serializable transactions that read and
// write the same rows; the second commit fails with 40001, which is
// SERVICE_UNAVAILABLE, retryable, and answered with Retry-After: 1.
func TestSerializationFailure(t *testing.T) {
	url := scratchDB(t)
	a := connect(t, url)
	b := connect(t, url)
	ctx := context.Background()
	_, err := a.Exec(ctx, "CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counters VALUES (1, 0)")
	require.NoError(t, err)

	txA, err := a.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	require.NoError(t, err)
	defer func() { _ = txA.Rollback(ctx) }() // no-op after commit
	txB, err := b.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	require.NoError(t, err)
	defer func() { _ = txB.Rollback(ctx) }()

	var n int
	require.NoError(t, txA.QueryRow(ctx, "SELECT n FROM counters WHERE id = 1").Scan(&n))
	require.NoError(t, txB.QueryRow(ctx, "SELECT n FROM counters WHERE id = 1").Scan(&n))
	_, err = txA.Exec(ctx, "UPDATE counters SET n = n + 1 WHERE id = 1")
	require.NoError(t, err)
	require.NoError(t, txA.Commit(ctx))
	_, err = txB.Exec(ctx, "UPDATE counters SET n = n + 1 WHERE id = 1")

	var pg *pgconn.PgError
	require.ErrorAs(t, err, &pg)
	assert.Equal(t, "40001", pg.Code)
	err = fmt.Errorf("refresh: rotate: %w", err)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err))
	assert.True(t, autherr.IsRetryable(err))

	rec := httptest.NewRecorder()
	quiet().Write(rec, httptest.NewRequest(http.MethodPost, "/api/v1/auth/refresh", nil), err)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
}
