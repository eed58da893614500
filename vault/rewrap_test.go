package vault_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/vault"
)

func TestRewrapMovesEveryRowToTheActiveKEK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	k1, k2 := "1:"+b64(keyOf(1)), "2:"+b64(keyOf(2))
	oldSvc := newService(t, db.Runtime, ring(t, k1))

	keys := map[uuid.UUID][]byte{}
	for range 5 {
		u := newUser(t, db)
		k, err := oldSvc.Init(ctx, u, vault.Client{})
		require.NoError(t, err)
		keys[u] = k.MasterKey
	}
	zk := newUser(t, db) // zero knowledge: no server wrap to move
	_, err := oldSvc.Init(ctx, zk, vault.Client{})
	require.NoError(t, err)
	_, err = oldSvc.SetRecoveryWrap(ctx, zk, make([]byte, 48), make([]byte, 12), vault.Client{})
	require.NoError(t, err)
	_, err = oldSvc.EnableZeroKnowledge(ctx, zk, vault.Client{})
	require.NoError(t, err)
	newUser(t, db) // no vault at all

	rotated := newService(t, db.Runtime, ring(t, k2+","+k1))
	// Before the rewrap, old rows are still readable.
	for u, want := range keys {
		k, err := rotated.Key(ctx, u, vault.Client{})
		require.NoError(t, err)
		assert.Equal(t, want, k.MasterKey)
		assert.Equal(t, "1", k.KEKID)
	}

	moved, err := rotated.Rewrap(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, 5, moved)
	assert.Equal(t, 5, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vaults WHERE kek_id = '2'`))
	assert.Equal(t, 0, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vaults WHERE kek_id = '1'`))
	assert.Equal(t, 5, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vault_audit
		WHERE action = 'rewrap' AND http_status IS NULL AND context->>'fromKekId' = '1' AND context->>'toKekId' = '2'`))

	// Resumable and idempotent: nothing left to move.
	moved, err = rotated.Rewrap(ctx, 2)
	require.NoError(t, err)
	assert.Zero(t, moved)

	// The old KEK can now leave the ring.
	onlyNew := newService(t, db.Runtime, ring(t, k2))
	for u, want := range keys {
		k, err := onlyNew.Key(ctx, u, vault.Client{})
		require.NoError(t, err)
		assert.Equal(t, want, k.MasterKey)
		assert.Equal(t, "2", k.KEKID)
	}

	_, err = rotated.Rewrap(ctx, 0)
	require.Error(t, err)
}

func TestRewrapReportsRowsItCannotUnwrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	k1, k2, k9 := "1:"+b64(keyOf(1)), "2:"+b64(keyOf(2)), "9:"+b64(keyOf(9))
	lost, ok := newUser(t, db), newUser(t, db)
	_, err := newService(t, db.Runtime, ring(t, k9)).Init(ctx, lost, vault.Client{})
	require.NoError(t, err)
	_, err = newService(t, db.Runtime, ring(t, k1)).Init(ctx, ok, vault.Client{})
	require.NoError(t, err)

	moved, err := newService(t, db.Runtime, ring(t, k2+","+k1)).Rewrap(ctx, 10)
	require.ErrorIs(t, err, vault.ErrUnwrap)
	assert.Contains(t, err.Error(), lost.String())
	assert.Equal(t, 1, moved, "the readable row still moves")
	assert.Equal(t, 1, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vaults WHERE kek_id = '9'`))
}
