package migrate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/migrate"
)

// Guards the runtime-role setup a host needs without the reference
// server's code: SetRuntimePassword stores a password on the role (read
// back from pg_authid as the superuser owner), and a pool on RuntimeURL
// logs in as the role. A value that could break out of the quoted literal
// is refused before any SQL. The password set is the one the test harness
// uses itself, so other tests that log in with it are not disturbed.
func TestRuntimeRoleSetup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	require.NoError(t, migrate.SetRuntimePassword(ctx, db.Owner, testutil.RuntimeTestPassword))
	var hasPassword bool
	require.NoError(t, db.Owner.QueryRow(ctx, `SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = $1`,
		migrate.RuntimeRole).Scan(&hasPassword))
	assert.True(t, hasPassword)

	u, err := migrate.RuntimeURL(db.OwnerURL, testutil.RuntimeTestPassword)
	require.NoError(t, err)
	assert.Contains(t, u, migrate.RuntimeRole+":")
	conn, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer conn.Close(ctx)
	role, err := migrate.CurrentRole(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, migrate.RuntimeRole, role.Name)
	assert.True(t, role.Safe(), "%+v", role)

	for _, bad := range []string{"short", strings.Repeat("a", 129), "x' SUPERUSER --aaaaaaaaaa", `back\slash-aaaaaaaaaaaa`} {
		assert.Error(t, migrate.SetRuntimePassword(ctx, db.Owner, bad), "%q", bad)
	}
	_, err = migrate.RuntimeURL("mysql://x", "p")
	assert.Error(t, err)
}
