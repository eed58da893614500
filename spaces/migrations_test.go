package spaces_test

import (
	"context"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/migrate"
	"github.com/mana-how/mana-auth/spaces"
)

// TestMigratesFromTheEarlierLayout guards the move of the spaces tables'
// migration out of manaauth: a database migrated when spaces were part of
// manaauth (manaauth/0001, 0002 and 0003_spaces.sql) must migrate cleanly
// to today's sources, without running 0003 again (it would fail: the
// tables exist) and with nothing pending afterwards. Without
// Source.Formerly, Up fails with "relation auth.spaces already exists" and
// Pending lists spaces/0001_spaces.sql.
func TestMigratesFromTheEarlierLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.EmptyDB(t)

	// The earlier layout: manaauth's files with the spaces file third.
	old := fstest.MapFS{}
	for name, src := range map[string]fs.FS{"0001_users.sql": manaauth.Migrations, "0002_sessions_and_tokens.sql": manaauth.Migrations} {
		b, err := fs.ReadFile(src, "migrations/"+name)
		require.NoError(t, err)
		old[name] = &fstest.MapFile{Data: b}
	}
	b, err := fs.ReadFile(spaces.Migrations, "migrations/0001_spaces.sql")
	require.NoError(t, err)
	old["0003_spaces.sql"] = &fstest.MapFile{Data: b}
	earlier := []migrate.Source{migrate.Foundation(), {Name: "manaauth", FS: old}}
	m, err := migrate.New(migrate.Config{Pool: db.Owner, Sources: earlier})
	require.NoError(t, err)
	applied, err := m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, applied, 4)
	_, err = db.Owner.Exec(ctx, `INSERT INTO auth.users (email) VALUES ('kept@example.com');
		INSERT INTO auth.spaces (name, type, created_at, created_by) SELECT 'Kept', 'team', now(), id FROM auth.users`)
	require.NoError(t, err)

	now := testutil.Sources()
	m, err = migrate.New(migrate.Config{Pool: db.Owner, Sources: now})
	require.NoError(t, err)
	applied, err = m.Up(ctx)
	require.NoError(t, err, "the earlier layout migrates to this one")
	for _, f := range applied {
		assert.NotEqual(t, "spaces/0001_spaces.sql", f.ID(), "the moved file ran again")
	}
	pending, err := migrate.Pending(ctx, db.Owner, now...)
	require.NoError(t, err)
	assert.Empty(t, pending)
	drift, err := migrate.CheckContract(ctx, db.Owner, now...)
	require.NoError(t, err)
	assert.Empty(t, drift)
	var kept int
	require.NoError(t, db.Owner.QueryRow(ctx, `SELECT count(*) FROM auth.spaces WHERE name = 'Kept'`).Scan(&kept))
	assert.Equal(t, 1, kept, "the data of the earlier layout is still there")

	// Run again: nothing to do, and still nothing pending.
	applied, err = m.Up(ctx)
	require.NoError(t, err)
	assert.Empty(t, applied)
}
