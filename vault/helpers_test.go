package vault_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/vault"
)

// newUser inserts a user (as the owner) and returns its id.
func newUser(t testing.TB, db *testutil.Database) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := db.Owner.Exec(context.Background(), `INSERT INTO auth.users (id, email) VALUES ($1, $2)`,
		id, id.String()+"@example.test")
	require.NoError(t, err)
	return id
}

func newService(t testing.TB, pool *pgxpool.Pool, keys vault.KeyWrapper) *vault.Service {
	t.Helper()
	if keys == nil {
		keys = ring(t, "1:"+b64(keyOf(1)))
	}
	s, err := vault.New(vault.Config{Pool: pool, Keys: keys})
	require.NoError(t, err)
	return s
}

// countAs counts rows of sql as userID, through row-level security.
func countAs(t testing.TB, pool *pgxpool.Pool, userID uuid.UUID, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, vault.RunAsUser(context.Background(), pool, userID, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), sql, args...).Scan(&n)
	}))
	return n
}

// ownerCount counts as the owner (a superuser in tests: no row-level
// security).
func ownerCount(t testing.TB, db *testutil.Database, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Owner.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}
