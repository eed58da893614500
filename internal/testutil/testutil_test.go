package testutil_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/migrate"
)

func TestEachTestGetsItsOwnMigratedDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := testutil.DB(t), testutil.DB(t)
	require.NotEqual(t, a.Name, b.Name)

	_, err := a.Runtime.Exec(ctx, "INSERT INTO auth.users (email) VALUES ('only-in-a@example.com')")
	require.NoError(t, err)
	var n int
	require.NoError(t, b.Runtime.QueryRow(ctx, "SELECT count(*) FROM auth.users").Scan(&n))
	assert.Zero(t, n, "database b sees a's row")

	pending, err := migrate.Pending(ctx, a.Runtime, testutil.Sources()...)
	require.NoError(t, err)
	assert.Empty(t, pending, "the clone carries every migration")

	var role string
	require.NoError(t, a.Runtime.QueryRow(ctx, "SELECT current_user").Scan(&role))
	assert.Equal(t, migrate.RuntimeRole, role)
	require.NoError(t, a.Owner.QueryRow(ctx, "SELECT current_user").Scan(&role))
	assert.NotEqual(t, migrate.RuntimeRole, role)
}

func TestDatabaseIsDroppedAfterTheTest(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("inner", func(t *testing.T) {
		name = testutil.DB(t).Name
	})
	admin := testutil.OpenPool(t, testutil.Server(t).URL)
	var exists bool
	require.NoError(t, admin.QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	assert.False(t, exists, "database %s outlived its test", name)
}

func TestProxyCutAndRestore(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	p := testutil.NewProxy(t, testutil.ServerAddr(t))
	pool := testutil.OpenPool(t, p.URL(db.RuntimeURL))
	ctx := context.Background()
	require.NoError(t, pool.Ping(ctx))
	p.Cut()
	require.Error(t, pool.Ping(ctx), "a cut proxy must refuse")
	p.Restore()
	require.NoError(t, pool.Ping(ctx))
}

func TestPgBouncerSharesServerConnectionsBetweenClients(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	b := testutil.PgBouncer(t, db, testutil.BouncerOptions{PoolSize: 1})
	ctx := context.Background()
	// Two clients (two pools of one connection each) through a bouncer with
	// one server connection: both see the same backend, so session state
	// of one would be the other's — the pooler operators run in production.
	pid := func() int {
		cfg, err := pgxpool.ParseConfig(b.RuntimeURL)
		require.NoError(t, err)
		cfg.MaxConns = 1
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		var role string
		var pid int
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_user, pg_backend_pid()").Scan(&role, &pid))
		assert.Equal(t, migrate.RuntimeRole, role)
		return pid
	}
	assert.Equal(t, pid(), pid(), "two clients, one server connection")

	pools := b.Show(t, "POOLS")
	require.Len(t, pools, 1, "the test database's pool")
	assert.Equal(t, "transaction", pools[0]["pool_mode"])
	assert.Equal(t, migrate.RuntimeRole, pools[0]["user"])
}
