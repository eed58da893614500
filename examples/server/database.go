package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/localpg"
	"github.com/mana-how/mana-auth/migrate"
)

// devDatabase is the database the zero-configuration development server
// creates on the PostgreSQL it finds or starts.
const devDatabase = "mana_auth"

// defaultPoolSize is the runtime pool's size when DATABASE_URL does not
// set pool_max_conns. pgxpool's own default (the larger of 4 and the number
// of CPUs) starves an auth server: most of its requests are short
// transactions waiting for a commit, and PostgreSQL flushes the commits of
// concurrent transactions together, so more of them in flight means more
// commits per flush. Measured on 2 cores (docs/capacity.md), refresh at
// c=32 went from about 600/s with 4 connections to 1,300-1,500/s with 16,
// and profile reads from about 4,300/s to 6,000/s. Connections are opened
// on demand, so an idle server holds few.
const defaultPoolSize = 16

// databases holds the two connections of api.md's "Tables" section: the
// owner that runs migrations, and the runtime pool the handlers use.
type databases struct {
	migrateURL string
	applied    []migrate.File // the migrations this start applied
	runtime    *pgxpool.Pool
	server     *localpg.Server // nil unless found or started in development
}

func (d *databases) Close() {
	if d.runtime != nil {
		d.runtime.Close()
	}
}

// openDatabases finds the database, migrates it as the owner and opens the
// runtime pool as migrate.RuntimeRole.
//
//   - DATABASE_URL unset (development only): localpg finds a local
//     PostgreSQL, or starts a private cluster under StateDir/postgres that is
//     reused next time; database mana_auth is created when missing.
//   - DATABASE_URL logs in as a superuser: in development the server
//     migrates with it and logs in as the runtime role on the same server
//     and database, with a password generated once and kept in StateDir;
//     in production that is refused.
//   - Otherwise DATABASE_URL is the runtime role and MIGRATE_DATABASE_URL
//     the owner.
func openDatabases(ctx context.Context, cfg Config, sources []migrate.Source, logger *slog.Logger) (_ *databases, err error) {
	d := &databases{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	runtimeURL, migrateURL := cfg.DatabaseURL, cfg.MigrateDatabaseURL
	if cfg.DatabaseURL == "" {
		srv, err := localpg.Find(ctx, localpg.Options{
			ClusterDir: filepath.Join(cfg.StateDir, "postgres"),
			Logger:     logger,
		})
		if err != nil {
			return nil, fmt.Errorf("no DATABASE_URL and %w", err)
		}
		d.server = srv
		logger.Info("development database", "source", srv.Source, "database", devDatabase)
		if err := ensureDatabase(ctx, srv.URL, devDatabase); err != nil {
			return nil, err
		}
		cfg, err := pgx.ParseConfig(srv.URL)
		if err != nil {
			return nil, fmt.Errorf("development database URL: %w", err)
		}
		if migrateURL, err = srv.URLFor(devDatabase, cfg.User, cfg.Password); err != nil {
			return nil, err
		}
		runtimeURL = migrateURL
	}

	if d.applied, err = runMigrations(ctx, migrateURL, sources, logger); err != nil {
		return nil, err
	}

	super, err := isSuperuser(ctx, runtimeURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if super {
		if cfg.Production {
			return nil, fmt.Errorf("DATABASE_URL logs in as a superuser, which bypasses row-level security; in production set it to the runtime role %s and MIGRATE_DATABASE_URL to the owner", migrate.RuntimeRole)
		}
		if runtimeURL, err = runtimeRoleURL(ctx, runtimeURL, cfg.StateDir); err != nil {
			return nil, err
		}
	}

	poolCfg, err := runtimePoolConfig(runtimeURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if !strings.Contains(runtimeURL, "pool_max_conns") {
		poolCfg.MaxConns = defaultPoolSize
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	d.runtime = pool
	d.migrateURL = migrateURL
	role, err := migrate.CurrentRole(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("runtime connection: %w", err)
	}
	if !role.Safe() {
		msg := fmt.Sprintf("the runtime connection logs in as %q (superuser=%t, bypassrls=%t, owns %d tables) and could bypass row-level security", role.Name, role.Superuser, role.BypassRLS, role.OwnedTables)
		if cfg.Production {
			return nil, errors.New(msg + "; refusing to start in production")
		}
		logger.Warn(msg)
	}
	logger.Info("runtime pool ready", "role", role.Name, "max_conns", poolCfg.MaxConns,
		"query_exec_mode", poolCfg.ConnConfig.DefaultQueryExecMode.String())
	return d, nil
}

// runtimeExecMode is how the runtime connection runs queries unless
// DATABASE_URL names pgx's default_query_exec_mode: cache_describe — the
// extended protocol, one round trip per query, the statement sent with
// every execution as the unnamed statement, its parameter and result types
// cached per connection. pgx's own default, cache_statement, keeps named
// prepared statements on the server connection, which breaks behind a
// pooler in transaction mode (PgBouncer before 1.21, or later ones without
// max_prepared_statements): the next statement of a client may run on
// another server connection, where the name is unknown ("prepared statement
// … does not exist"), or taken by another client ("… already exists"). The
// cost is measured by BenchmarkRuntimeExecMode; docs/deploy.md has the
// figures.
const runtimeExecMode = pgx.QueryExecModeCacheDescribe

// runtimePoolConfig parses the runtime DATABASE_URL (pool_max_conns and
// the other pgxpool parameters apply) and sets runtimeExecMode unless the
// URL chooses default_query_exec_mode itself.
func runtimePoolConfig(dbURL string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	if !namesExecMode(dbURL) {
		cfg.ConnConfig.DefaultQueryExecMode = runtimeExecMode
	}
	return cfg, nil
}

// namesExecMode reports whether a connection string sets
// default_query_exec_mode (as a URL query parameter or a key=value pair).
func namesExecMode(dbURL string) bool {
	if u, err := url.Parse(dbURL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return u.Query().Has("default_query_exec_mode")
	}
	return strings.Contains(dbURL, "default_query_exec_mode")
}

func runMigrations(ctx context.Context, ownerURL string, sources []migrate.Source, logger *slog.Logger) ([]migrate.File, error) {
	owner, err := pgxpool.New(ctx, ownerURL)
	if err != nil {
		return nil, fmt.Errorf("MIGRATE_DATABASE_URL: %w", err)
	}
	defer owner.Close()
	m, err := migrate.New(migrate.Config{Pool: owner, Sources: sources, Logger: logger})
	if err != nil {
		return nil, err
	}
	applied, err := m.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	logger.Info("migrations current", "applied_now", len(applied))
	return applied, nil
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to create database %s: %w", name, err)
	}
	defer closeConn(ctx, conn)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func isSuperuser(ctx context.Context, dbURL string) (bool, error) {
	cfg, err := runtimePoolConfig(dbURL)
	if err != nil {
		return false, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return false, err
	}
	defer closeConn(ctx, conn)
	role, err := migrate.CurrentRole(ctx, conn)
	if err != nil {
		return false, err
	}
	return role.Superuser, nil
}

// runtimeRoleURL returns superURL logged in as the runtime role with its
// development password (kept in StateDir/runtime-role-password, generated on
// first use). When the server refuses that login, the password is set
// through the superuser connection first.
func runtimeRoleURL(ctx context.Context, superURL, stateDir string) (string, error) {
	pass, err := statePassword(filepath.Join(stateDir, "runtime-role-password"))
	if err != nil {
		return "", err
	}
	runtimeURL, err := migrate.RuntimeURL(superURL, pass)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL: %w", err)
	}
	probe, err := connect(ctx, runtimeURL)
	if err == nil {
		closeConn(ctx, probe)
		return runtimeURL, nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !strings.HasPrefix(pgErr.Code, "28") {
		return "", fmt.Errorf("log in as %s: %w", migrate.RuntimeRole, err)
	}
	conn, err := connect(ctx, superURL)
	if err != nil {
		return "", err
	}
	defer closeConn(ctx, conn)
	if err := migrate.SetRuntimePassword(ctx, conn, pass); err != nil {
		return "", fmt.Errorf("set the runtime role's development password: %w", err)
	}
	return runtimeURL, nil
}

func statePassword(path string) (string, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a file of the operator's state directory (MANA_AUTH_STATE_DIR), named by the server
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	pass := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(pass+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return pass, nil
}

// connect opens one connection to a URL the server also opens a pool on.
// It parses the URL as the pool does, so that pool settings in it
// (pool_max_conns=16, …) are taken as such and not sent to the server as
// run-time parameters, which PostgreSQL refuses.
func connect(ctx context.Context, dbURL string) (*pgx.Conn, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

func closeConn(ctx context.Context, conn *pgx.Conn) {
	if err := conn.Close(context.WithoutCancel(ctx)); err != nil {
		// Closing only fails when the connection is already broken; the
		// operation that used it reported that.
		slog.Default().Debug("close connection", "err", err)
	}
}
