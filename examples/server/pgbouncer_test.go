package main

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
)

func TestRuntimePoolConfigChoosesTheExecMode(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want pgx.QueryExecMode
	}{
		{"postgres://u:p@db:5432/auth", pgx.QueryExecModeCacheDescribe},
		{"postgres://u:p@db:5432/auth?pool_max_conns=20", pgx.QueryExecModeCacheDescribe},
		{"postgres://u:p@db:5432/auth?default_query_exec_mode=cache_statement", pgx.QueryExecModeCacheStatement},
		{"postgresql://u:p@db/auth?default_query_exec_mode=exec", pgx.QueryExecModeExec},
		{"host=db user=u dbname=auth default_query_exec_mode=simple_protocol", pgx.QueryExecModeSimpleProtocol},
		{"host=db user=u dbname=auth", pgx.QueryExecModeCacheDescribe},
	} {
		cfg, err := runtimePoolConfig(tc.url)
		require.NoError(t, err, tc.url)
		assert.Equal(t, tc.want.String(), cfg.ConnConfig.DefaultQueryExecMode.String(), tc.url)
	}
	cfg, err := runtimePoolConfig("postgres://u:p@db:5432/auth?pool_max_conns=20")
	require.NoError(t, err)
	assert.EqualValues(t, 20, cfg.MaxConns, "pgxpool parameters of the URL apply")
}

// TestRuntimePoolWorksThroughPgBouncer: two clients through a PgBouncer in
// transaction mode with one server connection run the same statement. With
// pgx's default exec mode (cache_statement) the first client leaves its
// named prepared statement on the shared server connection and the second
// one's PREPARE of the same name fails (42P05) — the control that proves
// the bouncer really shares connections, and the bug class. The runtime
// pool as the server configures it (runtimeExecMode) runs the statement on
// both. Setting runtimeExecMode to cache_statement makes the second half
// fail the same way.
func TestRuntimePoolWorksThroughPgBouncer(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	b := testutil.PgBouncer(t, db, testutil.BouncerOptions{PoolSize: 1})
	ctx := context.Background()

	twoClients := func(cfg *pgxpool.Config) error {
		cfg.MaxConns = 2
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		defer pool.Close()
		c1, err := pool.Acquire(ctx)
		require.NoError(t, err)
		defer c1.Release()
		c2, err := pool.Acquire(ctx)
		require.NoError(t, err)
		defer c2.Release()
		const q = `SELECT count(*) FROM auth.users WHERE email = $1`
		var n int
		for _, c := range []*pgxpool.Conn{c1, c2, c1, c2} {
			if err := c.QueryRow(ctx, q, "nobody@example.test").Scan(&n); err != nil {
				return err
			}
		}
		return nil
	}

	defaults, err := pgxpool.ParseConfig(b.RuntimeURL)
	require.NoError(t, err)
	err = twoClients(defaults)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "pgx's default exec mode through a transaction-mode PgBouncer: want a PostgreSQL error, got %v", err)
	assert.Contains(t, []string{"42P05", "26000"}, pgErr.Code, "prepared statement already exists / does not exist: %v", err)

	cfg, err := runtimePoolConfig(b.RuntimeURL)
	require.NoError(t, err)
	require.NoError(t, twoClients(cfg), "the server's runtime pool through PgBouncer")
}
