package vault_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/vault"
)

// TestRunAsUserLeavesNothingBehindThroughPgBouncer: behind a PgBouncer in
// transaction mode with a single server connection, every client's next
// statement runs on the connection the previous client's transaction
// used. The row-level-security user that RunAsUser sets is local to its
// transaction, so the next client on that connection sees no setting and
// no vault row. Were it set for the session (set_config(…, false), or a
// SET outside the transaction), the next client — another user's request
// — would read alice's vault.
func TestRunAsUserLeavesNothingBehindThroughPgBouncer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	b := testutil.PgBouncer(t, db, testutil.BouncerOptions{PoolSize: 1})
	client := func() *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(b.RuntimeURL)
		require.NoError(t, err)
		cfg.MaxConns = 1
		// Prepared statements do not survive transaction pooling.
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool
	}
	first, second := client(), client()

	alice := newUser(t, db)
	_, err := newService(t, first, nil).Init(ctx, alice, vault.Client{})
	require.NoError(t, err)
	var pidInside int
	require.NoError(t, vault.RunAsUser(ctx, first, alice, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*), pg_backend_pid() FROM auth.encryption_vaults`).Scan(&n, &pidInside); err != nil {
			return err
		}
		assert.Equal(t, 1, n, "alice sees her vault inside RunAsUser")
		return nil
	}))

	var setting string
	var rows, pid int
	require.NoError(t, second.QueryRow(ctx, `SELECT coalesce(current_setting('`+vault.UserSetting+`', true), ''),
		(SELECT count(*) FROM auth.encryption_vaults), pg_backend_pid()`).Scan(&setting, &rows, &pid))
	require.Equal(t, pidInside, pid, "the other client runs on the same server connection")
	assert.Empty(t, setting, "the setting outlived RunAsUser's transaction")
	assert.Zero(t, rows, "another client sees alice's vault")
}

// TestAuditContextInEveryExecMode: a refused key read writes its audit row
// with a JSON context ({"code": …}) through a pool in each of pgx's query
// exec modes (the server lets DATABASE_URL choose; behind PgBouncer in
// transaction mode only the modes without prepared statements work). A
// context bound as []byte is bytea to exec and simple_protocol: the audit
// insert fails and the row is missing.
func TestAuditContextInEveryExecMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		pool := db.Pool(t, true, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
		user := newUser(t, db)
		_, err := newService(t, pool, nil).Key(ctx, user, vault.Client{})
		require.Error(t, err, "no vault yet")
		assert.Equal(t, 1, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vault_audit
			WHERE user_id = $1 AND context->>'code' = 'VAULT_NOT_FOUND'`, user), "exec mode %s: the audit row with its context", mode)
	}
}
