package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
)

// operatorEnv configures the commands for db, as an operator's shell would.
func operatorEnv(t *testing.T, db *testutil.Database) func(string) string {
	return mapEnv(map[string]string{"DATABASE_URL": db.RuntimeURL, "MIGRATE_DATABASE_URL": db.OwnerURL,
		"MANA_AUTH_STATE_DIR": t.TempDir()})
}

// runUsers runs `server users args…` and returns what it printed.
func runUsers(t *testing.T, env func(string) string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := usersCommand(context.Background(), env, &out, &syncBuffer{}, args)
	return out.String(), err
}

// TestMigrateCommand: `server migrate` applies every migration of an empty
// database and says which; run again it applies nothing. If the command
// skipped the migrator, the first run would list nothing and the tables
// would not exist.
func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	db := testutil.EmptyDB(t)
	env := mapEnv(map[string]string{"DATABASE_URL": db.OwnerURL, "MANA_AUTH_STATE_DIR": t.TempDir()})
	var out bytes.Buffer
	require.NoError(t, migrateCommand(context.Background(), env, &out, &syncBuffer{}, nil))
	assert.Contains(t, out.String(), "applied manaauth/0001_users.sql")
	assert.Contains(t, out.String(), "migrations applied")
	var n int
	require.NoError(t, db.Owner.QueryRow(context.Background(), `SELECT count(*) FROM auth.users`).Scan(&n))

	out.Reset()
	require.NoError(t, migrateCommand(context.Background(), env, &out, &syncBuffer{}, []string{"-json"}))
	assert.JSONEq(t, `{"applied":[]}`, out.String())
	assert.Error(t, migrateCommand(context.Background(), env, &out, &syncBuffer{}, []string{"extra"}))
}

// TestUsersCommands runs each `server users` command against a real
// database and checks both what it printed and what it changed: unlock
// lifts a real lock made by five wrong passwords at the gate; disable
// sets the flag and revokes the sessions; enable clears it;
// revoke-sessions revokes them all.
func TestUsersCommands(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	env := operatorEnv(t, db)
	ann, bob := uuid.New(), uuid.New()
	_, err := db.Owner.Exec(ctx, `INSERT INTO auth.users (id, email, name, email_verified_at) VALUES
		($1, 'ann@example.test', 'Ann', now()), ($2, 'bob@example.test', NULL, NULL)`, ann, bob)
	require.NoError(t, err)
	addSession := func(user uuid.UUID) {
		_, err := db.Owner.Exec(ctx, `INSERT INTO auth.sessions (user_id, created_at, last_used_at, expires_at)
			VALUES ($1, now(), now(), now() + interval '1 day')`, user)
		require.NoError(t, err)
	}
	addSession(ann)
	addSession(ann)
	count := func(sql string, args ...any) int {
		var n int
		require.NoError(t, db.Owner.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}

	// A real lock: five wrong passwords through the gate.
	events, err := lockout.NewEvents(lockout.EventsConfig{Pool: db.Runtime})
	require.NoError(t, err)
	gate, err := lockout.New(lockout.Config{Pool: db.Runtime, Events: events})
	require.NoError(t, err)
	for range 5 {
		tk, err := gate.Begin(ctx, lockout.Attempt{Email: "ann@example.test", Method: lockout.Password})
		require.NoError(t, err)
		require.NoError(t, tk.Finish(ctx, ann, autherr.New(autherr.InvalidCredentials, "wrong")))
	}
	locked, _, err := gate.Status(ctx, "ann@example.test")
	require.NoError(t, err)
	require.True(t, locked)

	out, err := runUsers(t, env, "list")
	require.NoError(t, err)
	assert.Contains(t, out, "ann@example.test")
	assert.Contains(t, out, "bob@example.test")
	assert.Contains(t, out, "2 accounts")
	out, err = runUsers(t, env, "list", "-q", "BOB", "-json")
	require.NoError(t, err)
	var listed struct {
		Users []struct {
			Email          string `json:"email"`
			ActiveSessions int    `json:"activeSessions"`
		} `json:"users"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
	require.Len(t, listed.Users, 1)
	assert.Equal(t, "bob@example.test", listed.Users[0].Email)

	out, err = runUsers(t, env, "show", "Ann@Example.test")
	require.NoError(t, err)
	assert.Contains(t, out, ann.String())
	assert.Regexp(t, `locked:\s+yes \(\d+s left\)`, out)
	assert.Regexp(t, `live sessions:\s+2`, out)

	out, err = runUsers(t, env, "unlock", "ann@example.test")
	require.NoError(t, err)
	assert.Equal(t, "unlocked ann@example.test\n", out)
	locked, _, err = gate.Status(ctx, "ann@example.test")
	require.NoError(t, err)
	assert.False(t, locked, "the lock is gone")
	assert.Equal(t, 1, count(`SELECT count(*) FROM auth.security_events WHERE event_type = 'LOCKOUT_CLEARED' AND user_id = $1`, ann))
	out, err = runUsers(t, env, "unlock", "ann@example.test", "-json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"email":"ann@example.test","wasLocked":false}`, out)

	out, err = runUsers(t, env, "disable", "ann@example.test", "-reason", "chargeback")
	require.NoError(t, err)
	assert.Equal(t, "disabled ann@example.test; revoked 2 sessions\n", out)
	assert.Equal(t, 1, count(`SELECT count(*) FROM auth.users WHERE id = $1 AND disabled_at IS NOT NULL`, ann))
	assert.Zero(t, count(`SELECT count(*) FROM auth.sessions WHERE user_id = $1 AND revoked_at IS NULL`, ann))
	assert.Equal(t, 1, count(`SELECT count(*) FROM auth.security_events WHERE event_type = 'ACCOUNT_DISABLED'
		AND user_id = $1 AND metadata->>'reason' = 'chargeback'`, ann))
	out, err = runUsers(t, env, "show", "ann@example.test", "-json")
	require.NoError(t, err)
	assert.Contains(t, out, `"disabledAt": "`)

	out, err = runUsers(t, env, "enable", "ann@example.test")
	require.NoError(t, err)
	assert.Equal(t, "enabled ann@example.test\n", out)
	assert.Zero(t, count(`SELECT count(*) FROM auth.users WHERE disabled_at IS NOT NULL`))

	addSession(bob)
	out, err = runUsers(t, env, "revoke-sessions", "bob@example.test", "-json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"email":"bob@example.test","id":"`+bob.String()+`","revokedSessions":1}`, out)
	assert.Zero(t, count(`SELECT count(*) FROM auth.sessions WHERE revoked_at IS NULL`))

	// Mistakes answer with a message, not a stack of causes.
	_, err = runUsers(t, env, "show", "nobody@example.test")
	assert.EqualError(t, err, "no account with this email")
	_, err = runUsers(t, env, "disable")
	assert.ErrorContains(t, err, "an EMAIL is required")
	_, err = runUsers(t, env, "frobnicate", "x@example.test")
	assert.ErrorContains(t, err, `unknown command "frobnicate"`)
	_, err = runUsers(t, env)
	assert.Error(t, err)
}
