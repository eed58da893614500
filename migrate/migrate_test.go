package migrate_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/migrate"
)

func newMigrator(t *testing.T, pool *pgxpool.Pool, sources ...migrate.Source) *migrate.Migrator {
	t.Helper()
	if sources == nil {
		sources = testutil.Sources()
	}
	m, err := migrate.New(migrate.Config{Pool: pool, Sources: sources})
	require.NoError(t, err)
	return m
}

// schemaSnapshot renders everything a migration can change in our schemas:
// relations, columns with types and defaults, constraints, grants and the
// runtime role's attributes.
func schemaSnapshot(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT format('%s.%s %s', n.nspname, c.relname, c.relkind) ||
		       coalesce(' acl=' || c.relacl::text, '') ||
		       coalesce((SELECT ' cols=' || string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) ||
		                        ':' || a.attnotnull || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ',' ORDER BY a.attnum)
		                 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') ||
		       coalesce((SELECT ' cons=' || string_agg(conname || ':' || pg_get_constraintdef(oid), ',' ORDER BY conname)
		                 FROM pg_constraint WHERE conrelid = c.oid), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname IN ('auth', 'mana_sync', 'mana_ai', 'public')
		UNION ALL
		SELECT format('schema %s owner=%s acl=%s', nspname, nspowner::regrole, nspacl) FROM pg_namespace
		WHERE nspname IN ('auth', 'mana_sync', 'mana_ai')
		UNION ALL
		SELECT format('role %s super=%s bypassrls=%s login=%s', rolname, rolsuper, rolbypassrls, rolcanlogin)
		FROM pg_roles WHERE rolname = $1
		UNION ALL
		SELECT format('migration %s/%s %s', source, name, checksum) FROM public.mana_auth_schema_migrations
		ORDER BY 1`, migrate.RuntimeRole)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, lines)
	return strings.Join(lines, "\n")
}

func countMigrations(t *testing.T, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT source || '/' || name, count(*)::int FROM `+migrate.Table+` GROUP BY 1`)
	require.NoError(t, err)
	out := map[string]int{}
	var id string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil })
	require.NoError(t, err)
	return out
}

func TestUpAppliesEverythingOnceAndTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	db := testutil.EmptyDB(t)
	ctx := context.Background()
	files, err := migrate.Files(testutil.Sources()...)
	require.NoError(t, err)

	applied, err := newMigrator(t, db.Owner).Up(ctx)
	require.NoError(t, err)
	require.Len(t, applied, len(files), "first Up applies every file")
	before := schemaSnapshot(t, db.Owner)

	// If Up did not skip recorded files, the second run would fail on
	// CREATE TABLE auth.users (42P07) or record every file twice.
	again, err := newMigrator(t, db.Owner).Up(ctx)
	require.NoError(t, err)
	assert.Empty(t, again, "second Up applies nothing")
	assert.Equal(t, before, schemaSnapshot(t, db.Owner), "second Up changed the schema")

	pending, err := migrate.Pending(ctx, db.Owner, testutil.Sources()...)
	require.NoError(t, err)
	assert.Empty(t, pending)
}

func TestConcurrentMigratorsApplyEachFileOnce(t *testing.T) {
	t.Parallel()
	db := testutil.EmptyDB(t)
	files, err := migrate.Files(testutil.Sources()...)
	require.NoError(t, err)

	// Without the advisory lock both would find nothing applied, run
	// 0001 together and one would fail (duplicate key in the migrations
	// table, or "relation auth.users already exists"); the sum of applied
	// files would then not be len(files).
	const n = 4
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([][]migrate.File, n)
	errs := make([]error, n)
	for i := range n {
		// Each migrator gets its own pool: they are separate instances.
		pool := db.Pool(t, false, nil)
		m := newMigrator(t, pool)
		wg.Go(func() {
			<-start
			results[i], errs[i] = m.Up(context.Background())
		})
	}
	close(start)
	wg.Wait()
	total := 0
	for i := range n {
		require.NoError(t, errs[i], "migrator %d", i)
		total += len(results[i])
	}
	assert.Equal(t, len(files), total, "files applied across all migrators")
	counts := countMigrations(t, db.Owner)
	require.Len(t, counts, len(files))
	for id, c := range counts {
		assert.Equal(t, 1, c, "migration %s recorded", id)
	}
}

func TestChangedMigrationIsRefused(t *testing.T) {
	t.Parallel()
	db := testutil.EmptyDB(t)
	ctx := context.Background()
	v1 := migrate.Source{Name: "demo", FS: fstest.MapFS{"0001_t.sql": {Data: []byte("CREATE TABLE demo_t (id int);")}}}
	_, err := newMigrator(t, db.Owner, migrate.Foundation(), v1).Up(ctx)
	require.NoError(t, err)

	v2 := migrate.Source{Name: "demo", FS: fstest.MapFS{"0001_t.sql": {Data: []byte("CREATE TABLE demo_t (id bigint);")}}}
	_, err = newMigrator(t, db.Owner, migrate.Foundation(), v2).Up(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "demo/0001_t.sql was applied with different contents")

	pending, err := migrate.Pending(ctx, db.Owner, migrate.Foundation(), v2)
	require.NoError(t, err)
	assert.Equal(t, []string{"demo/0001_t.sql (changed)"}, pending)
}

func TestFailedMigrationRollsBackWholeFile(t *testing.T) {
	t.Parallel()
	db := testutil.EmptyDB(t)
	ctx := context.Background()
	bad := migrate.Source{Name: "bad", FS: fstest.MapFS{
		"0001_ok.sql":     {Data: []byte("CREATE TABLE bad_ok (id int);")},
		"0002_broken.sql": {Data: []byte("CREATE TABLE bad_half (id int); SELECT no_such_column FROM bad_half;")},
	}}
	applied, err := newMigrator(t, db.Owner, migrate.Foundation(), bad).Up(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad/0002_broken.sql")
	require.Len(t, applied, 2, "foundation and bad/0001 were applied before the failure")

	var half bool
	require.NoError(t, db.Owner.QueryRow(ctx, "SELECT to_regclass('public.bad_half') IS NOT NULL").Scan(&half))
	assert.False(t, half, "the failed file's first statement must be rolled back with it")
	pending, err := migrate.Pending(ctx, db.Owner, migrate.Foundation(), bad)
	require.NoError(t, err)
	assert.Equal(t, []string{"bad/0002_broken.sql"}, pending)
}

func TestPendingSeesUnappliedFiles(t *testing.T) {
	t.Parallel()
	db := testutil.EmptyDB(t)
	ctx := context.Background()
	_, err := newMigrator(t, db.Owner, migrate.Foundation()).Up(ctx)
	require.NoError(t, err)
	pending, err := migrate.Pending(ctx, db.Owner, testutil.Sources()...)
	require.NoError(t, err)
	assert.Contains(t, pending, "manaauth/0001_users.sql")
}

func TestRuntimeRoleCannotBypassRowLevelSecurity(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()

	attrs, err := migrate.CurrentRole(ctx, db.Runtime)
	require.NoError(t, err)
	assert.Equal(t, migrate.RuntimeRole, attrs.Name, "the runtime pool logs in as the runtime role")
	assert.False(t, attrs.Superuser, "runtime role is SUPERUSER")
	assert.False(t, attrs.BypassRLS, "runtime role has BYPASSRLS")
	assert.Zero(t, attrs.OwnedTables, "runtime role owns tables (owners bypass RLS)")
	assert.True(t, attrs.Safe())

	// The negative control: the owner connection is a superuser, and
	// CurrentRole must say so — else Safe() would pass for anyone.
	owner, err := migrate.CurrentRole(ctx, db.Owner)
	require.NoError(t, err)
	assert.False(t, owner.Safe(), "owner (superuser) reported safe: %+v", owner)

	// The runtime role can use the users table but not change the schema.
	_, err = db.Runtime.Exec(ctx, "INSERT INTO auth.users (email) VALUES ('a@example.com')")
	require.NoError(t, err)
	_, err = db.Runtime.Exec(ctx, "ALTER TABLE auth.users ADD COLUMN x int")
	require.Error(t, err, "runtime role altered a table")
	_, err = db.Runtime.Exec(ctx, "CREATE TABLE auth.x (id int)")
	require.Error(t, err, "runtime role created a table")

	// pg_stat_activity shows the role the runtime pool logs in as.
	var user string
	require.NoError(t, db.Runtime.QueryRow(ctx, "SELECT usename FROM pg_stat_activity WHERE pid = pg_backend_pid()").Scan(&user))
	assert.Equal(t, migrate.RuntimeRole, user)
}

func TestUsersEmailIsCanonicalAndUnique(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	_, err := db.Runtime.Exec(ctx, "INSERT INTO auth.users (email) VALUES ('alice@x.com')")
	require.NoError(t, err)
	_, err = db.Runtime.Exec(ctx, "INSERT INTO auth.users (email) VALUES ('alice@x.com')")
	require.Error(t, err, "duplicate email accepted")
	_, err = db.Runtime.Exec(ctx, "INSERT INTO auth.users (email) VALUES ('Alice@X.com ')")
	require.Error(t, err, "non-canonical email accepted")
}

// TestUpRefusesATransactionModePooler: through PgBouncer in transaction
// mode, handing idle server connections out in turn (server_round_robin),
// consecutive transactions of the migrator's one client run on different
// server connections, so the session advisory lock taken on one of them
// excludes nothing. Up must notice and refuse (ErrLockNotHeld) before a
// migration commits; without the check it applies everything "under" a
// lock it does not hold, and instances started together interleave.
func TestUpRefusesATransactionModePooler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.EmptyDB(t)
	b := testutil.PgBouncer(t, db, testutil.BouncerOptions{PoolSize: 2, RoundRobin: true, Owner: true})
	cfg, err := pgxpool.ParseConfig(b.OwnerURL)
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe // named statements do not survive the pooler either
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	// Two server connections, both idle: two transactions at once.
	var txs []pgx.Tx
	for range 2 {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "SELECT 1")
		require.NoError(t, err)
		txs = append(txs, tx)
	}
	for _, tx := range txs {
		require.NoError(t, tx.Commit(ctx))
	}

	_, err = newMigrator(t, pool).Up(ctx)
	require.ErrorIs(t, err, migrate.ErrLockNotHeld)
	var applied int
	require.NoError(t, db.Owner.QueryRow(ctx, `SELECT count(*) FROM `+migrate.Table).Scan(&applied))
	assert.LessOrEqual(t, applied, 1, "migrations committed without the lock")
}
