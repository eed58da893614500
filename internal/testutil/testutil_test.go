package testutil_test

import (
	"context"
	"testing"

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
