package lockout_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
)

// TestRejectRecordsWithoutCounting: a rejected passkey check is a row in
// auth.login_attempts and a PASSKEY_LOGIN_FAILURE event, and takes its
// admission back. Negative control: were Reject to keep the admission
// counted (Finish with a counting error), the four wrong passwords plus
// the first rejection would lock the address and the fifth password below
// would answer ACCOUNT_LOCKED instead of INVALID_CREDENTIALS.
func TestRejectRecordsWithoutCounting(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	g := newGate(t, db.Runtime, nil)
	ctx := context.Background()
	const email = "pk@example.com"
	userID := uuid.New()
	_, err := db.Owner.Exec(ctx, `INSERT INTO auth.users (id, email) VALUES ($1, $2)`, userID, email)
	require.NoError(t, err)

	for range 4 {
		require.Equal(t, autherr.InvalidCredentials, autherr.CodeOf(try(t, g, email, wrongPassword)))
	}
	for range 10 {
		tk, err := g.Begin(ctx, lockout.Attempt{Email: email, Method: lockout.Passkey, IP: netip.MustParseAddr("192.0.2.9")})
		require.NoError(t, err, "a rejected passkey never locks")
		require.NoError(t, tk.Reject(ctx, userID, map[string]any{"reason": "signature", "method": "spoofed"}))
		require.NoError(t, tk.Reject(ctx, userID, nil), "a second Reject does nothing")
	}
	assert.Equal(t, autherr.InvalidCredentials, autherr.CodeOf(try(t, g, email, wrongPassword)), "the fifth wrong password")
	locked, _, err := g.Status(ctx, email)
	require.NoError(t, err)
	assert.True(t, locked, "five wrong passwords lock")

	assert.Equal(t, 10, count(t, db.Owner, `SELECT count(*) FROM auth.login_attempts
		WHERE email = $1 AND method = 'passkey' AND NOT successful AND ip_address = '192.0.2.9'`, email))
	assert.Equal(t, 10, count(t, db.Owner, `SELECT count(*) FROM auth.security_events WHERE event_type = 'PASSKEY_LOGIN_FAILURE'
		AND user_id = $1 AND metadata = '{"method": "passkey", "reason": "signature"}'`, userID),
		"the method in the metadata is the attempt's, not the caller's")
	var nilTicket *lockout.Ticket
	assert.NoError(t, nilTicket.Reject(ctx, userID, nil))
}

// TestInsertSQLCommitsWithTheTransaction: an event written through a
// database/sql transaction (what bun uses) commits and rolls back with it
// and binds every value as Insert does.
func TestInsertSQLCommitsWithTheTransaction(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	ev, err := lockout.NewEvents(lockout.EventsConfig{Pool: db.Runtime})
	require.NoError(t, err)
	sqlDB := stdlib.OpenDBFromPool(db.Runtime)
	t.Cleanup(func() { assert.NoError(t, sqlDB.Close()) })
	userID := uuid.New()
	_, err = db.Owner.Exec(ctx, `INSERT INTO auth.users (id, email) VALUES ($1, 'sql@example.com')`, userID)
	require.NoError(t, err)
	e := lockout.Event{Type: lockout.PasskeyRenamed, UserID: userID, IP: netip.MustParseAddr("2001:db8::1"),
		UserAgent: "agent", Metadata: map[string]any{"passkeyId": "p1"}}

	tx, err := sqlDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, ev.InsertSQL(ctx, tx, e))
	require.NoError(t, tx.Rollback())
	assert.Zero(t, count(t, db.Owner, `SELECT count(*) FROM auth.security_events`), "rolled back with its transaction")

	tx, err = sqlDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, ev.InsertSQL(ctx, tx, e))
	require.NoError(t, tx.Commit())
	assert.Equal(t, 1, count(t, db.Owner, `SELECT count(*) FROM auth.security_events WHERE event_type = 'PASSKEY_RENAMED'
		AND user_id = $1 AND ip_address = '2001:db8::1' AND user_agent = 'agent' AND metadata = '{"passkeyId": "p1"}'`, userID))

	tx, err = sqlDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.Error(t, ev.InsertSQL(ctx, tx, lockout.Event{Type: "NOT_A_TYPE"}), "unknown types are refused")
	require.NoError(t, tx.Rollback())
}
