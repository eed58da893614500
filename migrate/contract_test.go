package migrate_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/migrate"
)

func TestContractMatchesMigratedSchema(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	drift, err := migrate.CheckContract(context.Background(), db.Runtime, testutil.Sources()...)
	require.NoError(t, err)
	assert.Empty(t, drift, "the migrations must create every table and column the code declares")
}

func TestContractFindsRenamedColumnAndMissingTable(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()

	// The incident: a column the code uses is renamed.
	_, err := db.Owner.Exec(ctx, "ALTER TABLE auth.users RENAME COLUMN email TO email_address")
	require.NoError(t, err)
	drift, err := migrate.CheckContract(ctx, db.Runtime, testutil.Sources()...)
	require.NoError(t, err)
	require.Equal(t, []migrate.Drift{{Schema: "auth", Table: "users", Column: "email"}}, drift)
	assert.Equal(t, "missing column auth.users.email", drift[0].String())

	_, err = db.Owner.Exec(ctx, "ALTER TABLE auth.users RENAME COLUMN email_address TO email")
	require.NoError(t, err)
	drift, err = migrate.CheckContract(ctx, db.Runtime, testutil.Sources()...)
	require.NoError(t, err)
	assert.Empty(t, drift, "renamed back")

	_, err = db.Owner.Exec(ctx, "DROP TABLE auth.users CASCADE")
	require.NoError(t, err)
	drift, err = migrate.CheckContract(ctx, db.Runtime, testutil.Sources()...)
	require.NoError(t, err)
	assert.Equal(t, []migrate.Drift{{Schema: "auth", Table: "users"}}, drift)
}

func TestContractSeesColumnsTheRoleCannotRead(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	// information_schema.columns hides columns the role has no privilege
	// on; the check reads pg_catalog, so a revoked grant is not reported as
	// a missing column (it shows up as 42501 on use instead).
	_, err := db.Owner.Exec(ctx, "REVOKE ALL ON auth.users FROM "+migrate.RuntimeRole)
	require.NoError(t, err)
	drift, err := migrate.CheckContract(ctx, db.Runtime, testutil.Sources()...)
	require.NoError(t, err)
	assert.Empty(t, drift)
}
