package vault_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/migrate"
	"github.com/mana-how/mana-auth/vault"
)

func pgCode(t testing.TB, err error) *pgconn.PgError {
	t.Helper()
	var pg *pgconn.PgError
	require.ErrorAs(t, err, &pg)
	return pg
}

func TestRuntimeRoleIsBoundByRowLevelSecurity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	var role string
	var super, bypass bool
	require.NoError(t, db.Runtime.QueryRow(ctx,
		`SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&role, &super, &bypass))
	require.Equal(t, migrate.RuntimeRole, role)
	require.False(t, super)
	require.False(t, bypass)

	svc := newService(t, db.Runtime, nil)
	alice, bob := newUser(t, db), newUser(t, db)
	for _, u := range []uuid.UUID{alice, bob} {
		_, err := svc.Init(ctx, u, vault.Client{})
		require.NoError(t, err)
	}
	require.Equal(t, 2, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vaults`))

	// Without the setting the runtime role sees nothing, in or out of a
	// transaction.
	var n int
	require.NoError(t, db.Runtime.QueryRow(ctx, `SELECT count(*) FROM auth.encryption_vaults`).Scan(&n))
	assert.Equal(t, 0, n, "vault rows visible without app.current_user_id")
	require.NoError(t, db.Runtime.QueryRow(ctx, `SELECT count(*) FROM auth.encryption_vault_audit`).Scan(&n))
	assert.Equal(t, 0, n, "audit rows visible without app.current_user_id")
	tag, err := db.Runtime.Exec(ctx, `UPDATE auth.encryption_vaults SET zero_knowledge = zero_knowledge`)
	require.NoError(t, err)
	assert.Zero(t, tag.RowsAffected(), "rows writable without app.current_user_id")

	// As alice: bob's row is invisible and unwritable.
	assert.Equal(t, 1, countAs(t, db.Runtime, alice, `SELECT count(*) FROM auth.encryption_vaults`))
	assert.Equal(t, 0, countAs(t, db.Runtime, alice, `SELECT count(*) FROM auth.encryption_vaults WHERE user_id = $1`, bob))
	err = vault.RunAsUser(ctx, db.Runtime, alice, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE auth.encryption_vaults SET rotated_at = now() WHERE user_id = $1`, bob)
		if err == nil && tag.RowsAffected() != 0 {
			return errors.New("bob's row updated as alice")
		}
		return err
	})
	require.NoError(t, err)
	// Moving one's own row to another user, or inserting one for them, is
	// refused by the policy's WITH CHECK.
	carol := newUser(t, db)
	err = vault.RunAsUser(ctx, db.Runtime, alice, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE auth.encryption_vaults SET user_id = $1 WHERE user_id = $2`, carol, alice)
		return err
	})
	assert.Equal(t, "42501", pgCode(t, err).Code, "row moved to another user")
	err = vault.RunAsUser(ctx, db.Runtime, alice, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO auth.encryption_vault_audit (user_id, action, http_status, created_at)
			VALUES ($1, 'key', 200, now())`, bob)
		return err
	})
	assert.Equal(t, "42501", pgCode(t, err).Code, "audit row written for another user")
}

func TestAuditIsAppendOnlyForTheRuntimeRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	svc := newService(t, db.Runtime, nil)
	alice := newUser(t, db)
	_, err := svc.Init(ctx, alice, vault.Client{})
	require.NoError(t, err)
	require.Equal(t, 1, countAs(t, db.Runtime, alice, `SELECT count(*) FROM auth.encryption_vault_audit`))
	for _, stmt := range []string{
		`UPDATE auth.encryption_vault_audit SET http_status = 500`,
		`DELETE FROM auth.encryption_vault_audit`,
		`DELETE FROM auth.encryption_vaults`,
	} {
		err := vault.RunAsUser(ctx, db.Runtime, alice, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, stmt)
			return err
		})
		assert.Equal(t, "42501", pgCode(t, err).Code, "%s as the runtime role", stmt)
	}
	assert.Equal(t, 1, countAs(t, db.Runtime, alice, `SELECT count(*) FROM auth.encryption_vault_audit`))
}

func TestSchemaInvariantsRejectedByPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	iv, wrapped := make([]byte, 12), make([]byte, 48)
	cases := []struct {
		name, constraint, sql string
		args                  []any
	}{
		{"no_wrap", "encryption_vaults_has_wrap",
			`INSERT INTO auth.encryption_vaults (user_id, format_version, zero_knowledge, created_at) VALUES ($1, 1, true, now())`, nil},
		{"wrap_without_iv", "encryption_vaults_wrap_iv_pair",
			`INSERT INTO auth.encryption_vaults (user_id, wrapped_mk, kek_id, format_version, created_at) VALUES ($1, $2, '1', 1, now())`, []any{wrapped}},
		{"wrap_without_kek_id", "encryption_vaults_wrap_iv_pair",
			`INSERT INTO auth.encryption_vaults (user_id, wrapped_mk, wrap_iv, format_version, created_at) VALUES ($1, $2, $3, 1, now())`, []any{wrapped, iv}},
		{"recovery_without_iv", "encryption_vaults_recovery_pair",
			`INSERT INTO auth.encryption_vaults (user_id, wrapped_mk, wrap_iv, kek_id, format_version, recovery_wrapped_mk,
			 recovery_format_version, recovery_set_at, created_at) VALUES ($1, $2, $3, '1', 1, $2, 1, now(), now())`, []any{wrapped, iv}},
		{"zk_with_server_wrap", "encryption_vaults_zk_consistency",
			`INSERT INTO auth.encryption_vaults (user_id, wrapped_mk, wrap_iv, kek_id, format_version, recovery_wrapped_mk, recovery_iv,
			 recovery_format_version, recovery_set_at, zero_knowledge, created_at) VALUES ($1, $2, $3, '1', 1, $2, $3, 1, now(), true, now())`, []any{wrapped, iv}},
		{"standard_without_server_wrap", "encryption_vaults_zk_consistency",
			`INSERT INTO auth.encryption_vaults (user_id, format_version, recovery_wrapped_mk, recovery_iv,
			 recovery_format_version, recovery_set_at, created_at) VALUES ($1, 1, $2, $3, 1, now(), now())`, []any{wrapped, iv}},
		{"short_key_check", "encryption_vaults_key_check_size",
			`INSERT INTO auth.encryption_vaults (user_id, format_version, recovery_wrapped_mk, recovery_iv,
			 recovery_format_version, recovery_set_at, zero_knowledge, key_check, created_at) VALUES ($1, 1, $2, $3, 1, now(), true, $4, now())`,
			[]any{wrapped, iv, make([]byte, 15)}},
		{"key_check_outside_zero_knowledge", "encryption_vaults_key_check_zk_only",
			`INSERT INTO auth.encryption_vaults (user_id, wrapped_mk, wrap_iv, kek_id, format_version, key_check, created_at)
			 VALUES ($1, $2, $3, '1', 1, $4, now())`, []any{wrapped, iv, make([]byte, 16)}},
		{"short_iv", "encryption_vaults_iv_sizes",
			`INSERT INTO auth.encryption_vaults (user_id, wrapped_mk, wrap_iv, kek_id, format_version, created_at) VALUES ($1, $2, $3, '1', 1, now())`, []any{wrapped, iv[:11]}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser(t, db)
			err := vault.RunAsUser(ctx, db.Runtime, u, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, tc.sql, append([]any{u}, tc.args...)...)
				return err
			})
			pg := pgCode(t, err)
			assert.Equal(t, "23514", pg.Code)
			assert.Equal(t, tc.constraint, pg.ConstraintName)
		})
	}
}

func TestVaultGoesWithItsUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	svc := newService(t, db.Runtime, nil)
	alice, bob := newUser(t, db), newUser(t, db)
	for _, u := range []uuid.UUID{alice, bob} {
		_, err := svc.Init(ctx, u, vault.Client{})
		require.NoError(t, err)
	}
	_, err := db.Runtime.Exec(ctx, `DELETE FROM auth.users WHERE id = $1`, alice)
	require.NoError(t, err)
	assert.Equal(t, 0, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vaults WHERE user_id = $1`, alice))
	assert.Equal(t, 0, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vault_audit WHERE user_id = $1`, alice))
	assert.Equal(t, 1, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vaults WHERE user_id = $1`, bob))
}

// beginCounter counts Begin calls; it fails every one.
type beginCounter struct{ n atomic.Int32 }

func (b *beginCounter) Begin(context.Context) (pgx.Tx, error) {
	b.n.Add(1)
	return nil, errors.New("no database here")
}

func TestEmptyUserRefusedBeforeAnySQL(t *testing.T) {
	var b beginCounter
	err := vault.RunAsUser(context.Background(), &b, uuid.Nil, func(pgx.Tx) error { return nil })
	require.ErrorIs(t, err, vault.ErrNoUser)
	assert.Zero(t, b.n.Load(), "Begin called for a nil user")
	// Control: a real user reaches Begin.
	err = vault.RunAsUser(context.Background(), &b, uuid.New(), func(pgx.Tx) error { return nil })
	require.Error(t, err)
	assert.EqualValues(t, 1, b.n.Load())
}

// visible returns the user ids of the vault rows userID sees.
func visible(t testing.TB, pool *pgxpool.Pool, userID uuid.UUID) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	require.NoError(t, vault.RunAsUser(context.Background(), pool, userID, func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT user_id FROM auth.encryption_vaults`)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return err
	}))
	return ids
}

func TestOneConnectionTwoUsersAlternating(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	pool := db.Pool(t, true, func(c *pgxpool.Config) { c.MaxConns = 1 })
	svc := newService(t, pool, nil)
	alice, bob := newUser(t, db), newUser(t, db)
	keys := map[uuid.UUID][]byte{}
	for _, u := range []uuid.UUID{alice, bob} {
		k, err := svc.Init(ctx, u, vault.Client{})
		require.NoError(t, err)
		keys[u] = k.MasterKey
	}
	for i := range 20 {
		u := []uuid.UUID{alice, bob}[i%2]
		assert.Equal(t, []uuid.UUID{u}, visible(t, pool, u), "round %d", i)
		k, err := svc.Key(ctx, u, vault.Client{})
		require.NoError(t, err)
		assert.Equal(t, keys[u], k.MasterKey, "round %d", i)
		// Between transactions the one connection carries no user.
		var setting string
		require.NoError(t, pool.QueryRow(ctx, `SELECT current_setting('app.current_user_id', true)`).Scan(&setting))
		assert.Empty(t, setting, "round %d", i)
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM auth.encryption_vaults`).Scan(&n))
		assert.Zero(t, n, "round %d: rows visible between transactions", i)
	}
}

// TestSessionSettingWouldLeak is the negative control of the test above: a
// session-level setting (is_local false) stays on the pooled connection and
// the next request sees the previous user's row — what the checks above
// would catch.
func TestSessionSettingWouldLeak(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	pool := db.Pool(t, true, func(c *pgxpool.Config) { c.MaxConns = 1 })
	svc := newService(t, pool, nil)
	alice := newUser(t, db)
	_, err := svc.Init(ctx, alice, vault.Client{})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `SELECT set_config('app.current_user_id', $1, false)`, alice.String())
	require.NoError(t, err)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM auth.encryption_vaults`).Scan(&n))
	assert.Equal(t, 1, n, "a session setting leaks into the next use of the connection")
}

func TestParallelRequestsOfTwoUsersNeverCross(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	pool := db.Pool(t, true, func(c *pgxpool.Config) { c.MaxConns = 5 })
	svc := newService(t, pool, nil)
	users := []uuid.UUID{newUser(t, db), newUser(t, db)}
	keys := map[uuid.UUID][]byte{}
	for _, u := range users {
		k, err := svc.Init(ctx, u, vault.Client{})
		require.NoError(t, err)
		keys[u] = k.MasterKey
	}
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		crossed atomic.Int32
		failed  atomic.Int32
	)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := users[i%2]
			<-start
			err := vault.RunAsUser(ctx, pool, u, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, `SELECT user_id FROM auth.encryption_vaults`)
				if err != nil {
					return err
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
				if err != nil {
					return err
				}
				for _, id := range ids {
					if id != u {
						crossed.Add(1)
					}
				}
				return nil
			})
			if err != nil {
				failed.Add(1)
				return
			}
			k, err := svc.Key(ctx, u, vault.Client{})
			if err != nil {
				failed.Add(1)
				return
			}
			if string(k.MasterKey) != string(keys[u]) {
				crossed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	assert.Zero(t, failed.Load())
	assert.Zero(t, crossed.Load(), "rows or keys of the other user seen")
	assert.Equal(t, 101, countAs(t, pool, users[0], `SELECT count(*) FROM auth.encryption_vault_audit`), "init + 100 key reads")
}
