package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/migrate"
)

// TestBootstrapFailureAtSignupIsReconciled injects a bootstrap failure
// during signup (the runtime role loses INSERT on mana_sync.sync_changes):
// the signup still answers 201, the failures are logged and counted, no
// singleton exists; once the grant is back, POST
// /api/v1/me/bootstrap-singletons inserts both rows and a second call
// inserts nothing. If a hook failure failed the signup, register would
// answer 503 here; if reconcile only checked for existence without
// inserting, the first call would answer false.
func TestBootstrapFailureAtSignupIsReconciled(t *testing.T) {
	t.Parallel()
	f := newE2EServer(t, newSpecCoverage(t), e2eSetup{errorsLogged: true})
	ctx := context.Background()
	count := func() int {
		var n int
		require.NoError(t, f.db.Owner.QueryRow(ctx, "SELECT count(*) FROM mana_sync.sync_changes").Scan(&n))
		return n
	}

	_, err := f.db.Owner.Exec(ctx, "REVOKE INSERT ON mana_sync.sync_changes FROM "+migrate.RuntimeRole)
	require.NoError(t, err)
	u := f.signup("bootstrap-fail@example.com", e2ePass1)
	assert.Zero(t, count(), "no singleton could be written")
	assert.Contains(t, f.logs.String(), "hook")

	metrics := string(f.expect(200, "GET", "/metrics", nil).body)
	assert.Contains(t, metrics, `mana_auth_hook_failures_total{hook="user_created"} 1`)
	assert.Contains(t, metrics, `mana_auth_hook_failures_total{hook="space_created"} 1`)

	_, err = f.db.Owner.Exec(ctx, "GRANT INSERT ON mana_sync.sync_changes TO "+migrate.RuntimeRole)
	require.NoError(t, err)
	p := f.login("bootstrap-fail@example.com", e2ePass1)

	type answer struct {
		OK           bool `json:"ok"`
		Bootstrapped struct {
			UserContext bool            `json:"userContext"`
			Spaces      map[string]bool `json:"spaces"`
		} `json:"bootstrapped"`
	}
	var first, second answer
	require.NoError(t, json.Unmarshal(f.expect(200, "POST", bootstrapPath, nil, withBearer(p.AccessToken)).body, &first))
	assert.True(t, first.OK)
	assert.True(t, first.Bootstrapped.UserContext, "the user context is inserted now")
	require.Len(t, first.Bootstrapped.Spaces, 1, "the Personal space")
	for id, inserted := range first.Bootstrapped.Spaces {
		assert.True(t, inserted, "space %s", id)
	}
	assert.Equal(t, 2, count())

	require.NoError(t, json.Unmarshal(f.expect(200, "POST", bootstrapPath, nil, withBearer(p.AccessToken)).body, &second))
	assert.False(t, second.Bootstrapped.UserContext)
	for id, inserted := range second.Bootstrapped.Spaces {
		assert.False(t, inserted, "space %s inserted twice", id)
	}
	assert.Equal(t, 2, count(), "the second call inserts nothing")

	var userRows int
	require.NoError(t, f.db.Owner.QueryRow(ctx, `SELECT count(*) FROM mana_sync.sync_changes
		WHERE app_id = 'profile' AND table_name = 'userContext' AND record_id = $1::text AND user_id = $1::uuid AND space_id IS NULL`,
		u.ID.String()).Scan(&userRows))
	assert.Equal(t, 1, userRows)
}
