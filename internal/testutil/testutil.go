// Package testutil gives every test a real PostgreSQL database of its own.
//
// The server is found by localpg in this order: TEST_DATABASE_URL; a server
// answering on 127.0.0.1:5432 or the local socket; a throwaway cluster from
// the local PostgreSQL binaries (also as root), stopped when the test binary
// exits; testcontainers when a Docker engine answers. Without any of them
// DB fails the test with one line saying how to get PostgreSQL (under
// -short it skips, saying why).
//
// The first DB call of a test binary makes sure a template database with
// every migration applied exists: its name carries a hash of all migration
// files, so it is built once (under an advisory lock, so parallel package
// binaries build it once between them) and reused until a migration changes;
// templates of other migrations are dropped once they are a day old (a
// concurrent run of other code keeps its own). Each test then gets
// CREATE DATABASE … TEMPLATE, a pool logged in as the runtime role and one as
// the owner, and everything is dropped in t.Cleanup — tests run in parallel
// and never see each other's rows.
//
// Tests that use it live in external test packages (package x_test), since
// this package imports the packages that own migrations.
package testutil

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/apikey"
	"github.com/mana-how/mana-auth/bootstrap"
	"github.com/mana-how/mana-auth/grant/grantpg"
	"github.com/mana-how/mana-auth/localpg"
	"github.com/mana-how/mana-auth/localpg/container"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/mfa"
	"github.com/mana-how/mana-auth/migrate"
	"github.com/mana-how/mana-auth/passkey"
	"github.com/mana-how/mana-auth/spaces"
	"github.com/mana-how/mana-auth/vault"
)

// Sources is every migration source of the module, in the order they apply.
// examples/server mounts the same list (a test there compares them).
func Sources() []migrate.Source {
	return []migrate.Source{
		migrate.Foundation(),
		manaauth.Source(),
		spaces.Source(),
		lockout.Source(),
		bootstrap.Source(),
		vault.Source(),
		grantpg.Source(),
		apikey.Source(),
		mfa.Source(),
		passkey.Source(),
	}
}

// RuntimeTestPassword is set on the runtime role only when the server asks
// for a password (a container, or a server without trust authentication).
const RuntimeTestPassword = "mana-auth-test-runtime-role-password-0001" // #nosec G101 -- the password of a role on throwaway test databases only

const (
	templateComment = "mana-auth test template, built "
	templatePrefix  = "mana_auth_tpl_"
	dbPrefix        = "mana_auth_t_"
	lockKey         = 0x6d616e6174706c00 // "manatpl\0": serialises template builds
)

// Database is one test's own database.
type Database struct {
	Name       string
	OwnerURL   string
	RuntimeURL string
	// Owner connects as the superuser that owns the tables (migrations,
	// fixtures, catalogue changes).
	Owner *pgxpool.Pool
	// Runtime connects as migrate.RuntimeRole, as the services do.
	Runtime *pgxpool.Pool
}

type env struct {
	server      *localpg.Server
	admin       *pgxpool.Pool // maintenance database, as superuser
	template    string
	runtimePass string
}

var (
	envOnce sync.Once
	envVal  *env
	envErr  error
)

// Server returns the PostgreSQL server the tests use.
func Server(t testing.TB) *localpg.Server {
	t.Helper()
	return setup(t).server
}

func setup(t testing.TB) *env {
	t.Helper()
	envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		envVal, envErr = newEnv(ctx, t)
	})
	if envErr != nil {
		if testing.Short() {
			t.Skipf("-short and no PostgreSQL: %v", envErr)
		}
		t.Fatalf("%v", envErr)
	}
	return envVal
}

func newEnv(ctx context.Context, t testing.TB) (*env, error) {
	srv, err := localpg.Find(ctx, localpg.Options{EnvVar: "TEST_DATABASE_URL", Container: container.Step{}})
	if err != nil {
		return nil, err
	}
	admin, err := pgxpool.New(ctx, srv.URL)
	if err != nil {
		return nil, fmt.Errorf("testutil: connect %s: %w", srv.Source, err)
	}
	e := &env{server: srv, admin: admin}
	files, err := migrate.Files(Sources()...)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\x00", f.ID(), f.Checksum)
	}
	e.template = templatePrefix + hex.EncodeToString(h.Sum(nil))[:16]
	if err := e.ensureTemplate(ctx, t); err != nil {
		return nil, err
	}
	return e, nil
}

// ensureTemplate builds the migrated template unless it exists. The build
// happens under a name of its own and is renamed when complete, so a
// template that exists is always whole.
func (e *env) ensureTemplate(ctx context.Context, t testing.TB) error {
	conn, err := e.admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("testutil: acquire: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockKey)); err != nil {
		return fmt.Errorf("testutil: template lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(lockKey)); err != nil {
			t.Logf("testutil: release template lock (the connection is closed with the pool): %v", err)
		}
	}()

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", e.template).Scan(&exists); err != nil {
		return fmt.Errorf("testutil: look up template: %w", err)
	}
	if !exists {
		if err := e.buildTemplate(ctx, conn.Conn()); err != nil {
			return err
		}
		e.dropStaleTemplates(ctx, conn.Conn(), t)
	}
	pass, err := e.runtimePassword(ctx, conn.Conn())
	if err != nil {
		return err
	}
	e.runtimePass = pass
	return nil
}

func (e *env) buildTemplate(ctx context.Context, conn *pgx.Conn) error {
	building := e.template + "_build"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("testutil: drop half-built template: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return fmt.Errorf("testutil: create template: %w", err)
	}
	url, err := e.ownerURL(building)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("testutil: connect template: %w", err)
	}
	m, err := migrate.New(migrate.Config{Pool: pool, Sources: Sources()})
	if err == nil {
		_, err = m.Up(ctx)
	}
	pool.Close()
	if err != nil {
		return fmt.Errorf("testutil: migrate template: %w", err)
	}
	for _, stmt := range []string{
		"ALTER DATABASE " + building + " RENAME TO " + e.template,
		"ALTER DATABASE " + e.template + " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
		"COMMENT ON DATABASE " + e.template + " IS '" + templateComment + time.Now().UTC().Format(time.RFC3339) + "'",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("testutil: finish template: %w", err)
		}
	}
	return nil
}

// dropStaleTemplates removes templates built from other migrations more
// than a day ago. Younger ones may belong to a concurrent run of other code
// (another checkout, another branch) on the same server, which must not
// lose its template mid-run.
func (e *env) dropStaleTemplates(ctx context.Context, conn *pgx.Conn, t testing.TB) {
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database
		WHERE datname LIKE $1 AND datname <> $2
		  AND coalesce(substr(shobj_description(oid, 'pg_database'), $3), '') < $4`,
		templatePrefix+"%", e.template, len(templateComment)+1, time.Now().UTC().Add(-24*time.Hour).Format(time.RFC3339))
	if err != nil {
		t.Logf("testutil: list stale templates: %v", err)
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Logf("testutil: list stale templates: %v", err)
		return
	}
	for _, n := range names {
		if strings.HasSuffix(n, "_build") {
			continue // another binary may be building it right now
		}
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{n}.Sanitize()+" WITH IS_TEMPLATE false"); err != nil {
			t.Logf("testutil: unmark stale template %s: %v", n, err)
			continue
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{n}.Sanitize()); err != nil {
			t.Logf("testutil: drop stale template %s: %v", n, err)
		}
	}
}

// runtimePassword makes sure the tests can log in as the runtime role: as is
// under trust authentication, else with RuntimeTestPassword set on it.
func (e *env) runtimePassword(ctx context.Context, admin *pgx.Conn) (string, error) {
	url, err := e.server.URLFor("postgres", migrate.RuntimeRole, "")
	if err != nil {
		return "", err
	}
	c, err := pgx.Connect(ctx, url)
	if err == nil {
		return "", c.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !strings.HasPrefix(pgErr.Code, "28") {
		return "", fmt.Errorf("testutil: log in as %s: %w", migrate.RuntimeRole, err)
	}
	if err := migrate.SetRuntimePassword(ctx, admin, RuntimeTestPassword); err != nil {
		return "", fmt.Errorf("testutil: %w", err)
	}
	return RuntimeTestPassword, nil
}

// ownerURL is the server's superuser URL for another database.
func (e *env) ownerURL(database string) (string, error) {
	cfg, err := pgx.ParseConfig(e.server.URL)
	if err != nil {
		return "", fmt.Errorf("testutil: parse server URL: %w", err)
	}
	return e.server.URLFor(database, cfg.User, cfg.Password)
}

// DB returns a fresh database with every migration applied, dropped when the
// test ends.
func DB(t testing.TB) *Database {
	t.Helper()
	e := setup(t)
	return e.newDatabase(t, e.template)
}

// EmptyDB returns a fresh database with no migration applied (for tests of
// the migrator itself), dropped when the test ends. Its Runtime pool is nil:
// the runtime role exists only once Foundation ran; call OpenRuntime then.
func EmptyDB(t testing.TB) *Database {
	t.Helper()
	e := setup(t)
	return e.newDatabase(t, "")
}

func (e *env) newDatabase(t testing.TB, template string) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := dbPrefix + randomHex(t, 8)
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	if _, err := e.admin.Exec(ctx, stmt); err != nil {
		t.Fatalf("testutil: %s: %v", stmt, err)
	}
	db := &Database{Name: name}
	t.Cleanup(func() {
		if db.Owner != nil {
			db.Owner.Close()
		}
		if db.Runtime != nil {
			db.Runtime.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testutil: drop %s: %v", name, err)
		}
	})
	var err error
	if db.OwnerURL, err = e.ownerURL(name); err != nil {
		t.Fatal(err)
	}
	if db.Owner, err = pgxpool.New(ctx, db.OwnerURL); err != nil {
		t.Fatalf("testutil: owner pool: %v", err)
	}
	if db.RuntimeURL, err = e.server.URLFor(name, migrate.RuntimeRole, e.runtimePass); err != nil {
		t.Fatal(err)
	}
	if template != "" {
		db.OpenRuntime(t)
	}
	return db
}

// OpenRuntime (re)opens db.Runtime as the runtime role and returns it.
func (db *Database) OpenRuntime(t testing.TB) *pgxpool.Pool {
	t.Helper()
	if db.Runtime != nil {
		db.Runtime.Close()
	}
	pool, err := pgxpool.New(context.Background(), db.RuntimeURL)
	if err != nil {
		t.Fatalf("testutil: runtime pool: %v", err)
	}
	db.Runtime = pool
	return pool
}

// Pool opens an extra pool on db with the given config tweaks (for example a
// single connection), closed when the test ends.
func (db *Database) Pool(t testing.TB, runtime bool, tweak func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	url := db.OwnerURL
	if runtime {
		url = db.RuntimeURL
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("testutil: parse %s: %v", db.Name, err)
	}
	if tweak != nil {
		tweak(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("testutil: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testutil: random: %v", err)
	}
	return hex.EncodeToString(b)
}

// ServerAddr is the test server's TCP address (host:port), for a Proxy.
func ServerAddr(t testing.TB) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(setup(t).server.URL)
	if err != nil {
		t.Fatalf("testutil: parse server URL: %v", err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		t.Fatalf("testutil: the test server is reached through a Unix socket (%s); proxy tests need TCP", cfg.Host)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// OpenPool opens a pool on url, closed when the test ends.
func OpenPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("testutil: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
