package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/vault"
)

// TestRewrapSubcommandMovesRowsToTheActiveKEK: a vault made under KEK "1"
// is moved to KEK "2" by `server rewrap`, and its key is unchanged. If the
// subcommand did nothing (or rewrapped under the old KEK), kek_id would stay
// "1"; if it re-generated keys, the key read back would differ.
func TestRewrapSubcommandMovesRowsToTheActiveKEK(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	k1 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("1", 32)))
	k2 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("2", 32)))

	userID := uuid.New()
	_, err := db.Owner.Exec(ctx, "INSERT INTO auth.users (id, email) VALUES ($1, 'rewrap@example.com')", userID)
	require.NoError(t, err)
	old, err := vault.ParseKEKs("", "1:"+k1)
	require.NoError(t, err)
	svc, err := vault.New(vault.Config{Pool: db.Runtime, Keys: old})
	require.NoError(t, err)
	before, err := svc.Init(ctx, userID, vault.Client{})
	require.NoError(t, err)

	logs := &syncBuffer{}
	env := map[string]string{
		"DATABASE_URL": db.RuntimeURL, "MIGRATE_DATABASE_URL": db.OwnerURL,
		"MANA_AUTH_KEKS": "2:" + k2 + ",1:" + k1, "MANA_AUTH_STATE_DIR": t.TempDir(),
	}
	require.NoError(t, rewrap(ctx, mapEnv(env), logs, []string{"-batch", "1"}), "%s", logs)
	assert.Contains(t, logs.String(), "moved=1")

	var kek string
	require.NoError(t, db.Owner.QueryRow(ctx, "SELECT kek_id FROM auth.encryption_vaults WHERE user_id = $1", userID).Scan(&kek))
	assert.Equal(t, "2", kek)

	ring, err := vault.ParseKEKs("", "2:"+k2)
	require.NoError(t, err)
	svc2, err := vault.New(vault.Config{Pool: db.Runtime, Keys: ring})
	require.NoError(t, err)
	after, err := svc2.Key(ctx, userID, vault.Client{})
	require.NoError(t, err)
	assert.Equal(t, before.MasterKey, after.MasterKey, "the master key survives the rewrap")
	assert.Equal(t, "2", after.KEKID)

	require.Error(t, rewrap(ctx, mapEnv(env), logs, []string{"-batch", "0"}))
}
