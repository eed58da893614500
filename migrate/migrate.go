package migrate

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RuntimeRole is the role the services run their queries as. The Foundation
// source creates it without SUPERUSER, BYPASSRLS, CREATEDB or CREATEROLE; the
// tables are owned by the role that runs the migrations.
const RuntimeRole = "mana_auth_runtime"

// Table is the name of the table that records applied migrations.
const Table = "public.mana_auth_schema_migrations"

// DefaultLockKey is the advisory lock key held while migrating
// (the bytes of "manaauth" as a big-endian int64).
const DefaultLockKey int64 = 0x6d616e6161757468

// Migrations holds the Foundation SQL files.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Foundation creates the schemas auth, mana_sync and mana_ai and the runtime
// role with its schema grants. Every other source builds on it, so it comes
// first in every list.
func Foundation() Source {
	return Source{Name: "foundation", FS: Migrations, Dir: "migrations"}
}

// Source is an ordered set of migrations owned by one package: every *.sql
// file in Dir of FS ("" or "." for its root), applied in lexical order of
// their names (0001_x.sql, 0002_y.sql, …). Contract lists the tables and
// columns the package's code uses; see CheckContract.
//
// Formerly maps a file name of this source to the ID ("source/name") it
// was applied under before it moved here from another package: a database
// that recorded the old ID with the same checksum counts the file as
// applied, and Up records it under its new ID too. So moving a table's
// migration to the package that owns the table never re-runs it.
type Source struct {
	Name     string
	FS       fs.FS
	Dir      string
	Contract []TableColumns
	Formerly map[string]string
}

// TableColumns names a table and the columns code reads or writes.
type TableColumns struct {
	Schema  string
	Table   string
	Columns []string
}

// File is one migration file of a source.
type File struct {
	Source   string
	Name     string
	SQL      string
	Checksum string // hex SHA-256 of SQL
	Formerly string // the ID it was applied under before it moved; "" when it never moved
}

// ID is "source/name".
func (f File) ID() string { return f.Source + "/" + f.Name }

// Files lists the migration files of the sources in the order they apply.
// Source names must be unique and non-empty.
func Files(sources ...Source) ([]File, error) {
	seen := map[string]bool{}
	var out []File
	for _, s := range sources {
		if s.Name == "" || s.FS == nil {
			return nil, errors.New("migrate: source without a name or FS")
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("migrate: source %q listed twice", s.Name)
		}
		seen[s.Name] = true
		dir := s.Dir
		if dir == "" {
			dir = "."
		}
		names, err := fs.Glob(s.FS, path.Join(dir, "*.sql"))
		if err != nil {
			return nil, fmt.Errorf("migrate: list %s: %w", s.Name, err)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("migrate: source %q has no *.sql files", s.Name)
		}
		slices.Sort(names)
		for _, n := range names {
			b, err := fs.ReadFile(s.FS, n)
			if err != nil {
				return nil, fmt.Errorf("migrate: read %s/%s: %w", s.Name, n, err)
			}
			sum := sha256.Sum256(b)
			out = append(out, File{Source: s.Name, Name: path.Base(n), SQL: string(b), Checksum: hex.EncodeToString(sum[:]),
				Formerly: s.Formerly[path.Base(n)]})
		}
	}
	return out, nil
}

// Config configures a Migrator.
type Config struct {
	// Pool connects as the owner of the tables (a role allowed to create
	// schemas, tables and roles), directly or through session pooling (the
	// advisory lock is a session's). Required.
	Pool *pgxpool.Pool
	// Sources in the order they apply; Foundation first. Required.
	Sources []Source
	// Logger receives one line per applied file; nil: slog.Default().
	Logger *slog.Logger
	// LockKey is the advisory lock key; zero means DefaultLockKey.
	LockKey int64
}

// Migrator applies migrations.
type Migrator struct {
	pool    *pgxpool.Pool
	files   []File
	logger  *slog.Logger
	lockKey int64
}

// New validates cfg and reads every migration file.
func New(cfg Config) (*Migrator, error) {
	if cfg.Pool == nil {
		return nil, errors.New("migrate: Config.Pool is required")
	}
	if len(cfg.Sources) == 0 {
		return nil, errors.New("migrate: Config.Sources is empty")
	}
	files, err := Files(cfg.Sources...)
	if err != nil {
		return nil, err
	}
	m := &Migrator{pool: cfg.Pool, files: files, logger: cfg.Logger, lockKey: cfg.LockKey}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	if m.lockKey == 0 {
		m.lockKey = DefaultLockKey
	}
	return m, nil
}

// Up applies every file not applied yet, each in its own transaction that
// also records it, while holding a session advisory lock, so several
// instances may call it at once: one applies, the others wait and then find
// nothing left to do. It returns the files it applied. A file that was
// applied with other contents is an error (migrations are never edited once
// shipped). The pool must reach PostgreSQL directly or through session
// pooling: each file's transaction checks that it runs in the session that
// holds the lock, and Up fails with ErrLockNotHeld through a pooler in
// transaction mode.
func (m *Migrator) Up(ctx context.Context) ([]File, error) {
	conn, err := m.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", m.lockKey); err != nil {
		return nil, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// A failed unlock leaves the lock to the session; the connection is
		// destroyed then, which releases it.
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", m.lockKey); uerr != nil {
			m.logger.Warn("migrate: release advisory lock; dropping the connection", "err", uerr)
			if cerr := conn.Hijack().Close(context.WithoutCancel(ctx)); cerr != nil {
				m.logger.Warn("migrate: close connection", "err", cerr)
			}
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+Table+` (
		source     text        NOT NULL,
		name       text        NOT NULL,
		checksum   text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (source, name))`); err != nil {
		return nil, fmt.Errorf("migrate: create %s: %w", Table, err)
	}

	applied, err := appliedChecksums(ctx, conn)
	if err != nil {
		return nil, err
	}
	var done []File
	for _, f := range m.files {
		if sum, id, ok := appliedAs(applied, f); ok {
			if sum != f.Checksum {
				return done, fmt.Errorf("migrate: %s was applied with different contents (checksum %s, file %s); add a new migration instead of editing one", id, short(sum), short(f.Checksum))
			}
			if id != f.ID() {
				if err := adopt(ctx, conn.Conn(), f); err != nil {
					return done, err
				}
				m.logger.Info("migrate: recorded under its new name", "migration", f.ID(), "formerly", id)
			}
			continue
		}
		start := time.Now()
		if err := applyFile(ctx, conn.Conn(), f, m.lockKey, m.logger); err != nil {
			return done, err
		}
		m.logger.Info("migrate: applied", "migration", f.ID(), "duration", time.Since(start))
		done = append(done, f)
	}
	return done, nil
}

// appliedAs finds f among the applied migrations, under its ID or the ID
// it had before it moved, and returns the recorded checksum and the ID it
// was found under.
func appliedAs(applied map[string]string, f File) (sum, id string, ok bool) {
	if sum, ok := applied[f.ID()]; ok {
		return sum, f.ID(), true
	}
	if f.Formerly != "" {
		if sum, ok := applied[f.Formerly]; ok {
			return sum, f.Formerly, true
		}
	}
	return "", "", false
}

// adopt records a moved file under its new ID (the old row stays: it is
// what the database really ran).
func adopt(ctx context.Context, conn *pgx.Conn, f File) error {
	if _, err := conn.Exec(ctx, `INSERT INTO `+Table+` (source, name, checksum) VALUES ($1, $2, $3)
		ON CONFLICT (source, name) DO NOTHING`, f.Source, f.Name, f.Checksum); err != nil {
		return fmt.Errorf("migrate: %s: record under its new name: %w", f.ID(), err)
	}
	return nil
}

// ErrLockNotHeld is the error of Up when a migration's transaction runs in
// another session than the one that took the advisory lock: the pool goes
// through a pooler in transaction mode (PgBouncer's pool_mode =
// transaction), which hands each transaction to any server connection, so
// the lock would exclude nothing. Migrations need a direct connection (or
// session pooling).
var ErrLockNotHeld = errors.New("migrate: the migration's transaction does not run in the session that holds the advisory lock; " +
	"the connection goes through a pooler in transaction mode: migrate over a direct connection (MIGRATE_DATABASE_URL)")

func applyFile(ctx context.Context, conn *pgx.Conn, f File, lockKey int64, logger *slog.Logger) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %s: begin: %w", f.ID(), err)
	}
	defer rollback(ctx, tx, logger)
	// Advisory locks are re-entrant within a session: this succeeds in the
	// session that holds the lock, and fails in any other while it is held.
	var ours bool
	if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", lockKey).Scan(&ours); err != nil {
		return fmt.Errorf("migrate: %s: check the advisory lock: %w", f.ID(), err)
	}
	if !ours {
		return fmt.Errorf("%w (at %s)", ErrLockNotHeld, f.ID())
	}
	// No arguments: pgx sends the file with the simple protocol, so a file
	// may hold several statements.
	if _, err := tx.Exec(ctx, f.SQL); err != nil {
		return fmt.Errorf("migrate: %s: %w", f.ID(), err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+Table+` (source, name, checksum) VALUES ($1, $2, $3)`, f.Source, f.Name, f.Checksum); err != nil {
		return fmt.Errorf("migrate: %s: record: %w", f.ID(), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: %s: commit: %w", f.ID(), err)
	}
	return nil
}

// rollback ends a transaction that was not committed; after Commit it is a
// no-op. A failed rollback makes pgx close the connection, and the error
// that made us roll back is what the caller reports, so the rollback's own
// error is only logged.
func rollback(ctx context.Context, tx pgx.Tx, logger *slog.Logger) {
	if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		logger.Warn("migrate: rollback", "err", err)
	}
}

// Querier is what Pending and CheckContract need: a pool or a connection.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func appliedChecksums(ctx context.Context, q Querier) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT source, name, checksum FROM `+Table)
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", Table, err)
	}
	out := map[string]string{}
	var src, name, sum string
	_, err = pgx.ForEachRow(rows, []any{&src, &name, &sum}, func() error {
		out[src+"/"+name] = sum
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", Table, err)
	}
	return out, nil
}

// Pending reports the files of sources that the database has not applied,
// or applied with other contents (reported as "source/name (changed)").
// It works through the runtime role, which may read the migrations table.
// An empty result means the schema is current.
func Pending(ctx context.Context, q Querier, sources ...Source) ([]string, error) {
	files, err := Files(sources...)
	if err != nil {
		return nil, err
	}
	applied, err := appliedChecksums(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		sum, _, ok := appliedAs(applied, f)
		switch {
		case !ok:
			out = append(out, f.ID())
		case sum != f.Checksum:
			out = append(out, f.ID()+" (changed)")
		}
	}
	return out, nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
