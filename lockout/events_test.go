package lockout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	dbtest "github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
)

// TestEventsStoreEveryCombinationOfAbsentValues writes the 16 combinations
// of present and absent optional fields and reads each row back. The old
// audit log built its VALUES list from the present values only, so every
// row with an absent one failed and was swallowed; doing that here makes
// Log count failures (asserted zero) and the rows go missing.
func TestEventsStoreEveryCombinationOfAbsentValues(t *testing.T) {
	t.Parallel()
	db := dbtest.DB(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	ev, err := lockout.NewEvents(lockout.EventsConfig{Pool: db.Runtime, Registerer: reg})
	require.NoError(t, err)

	userID := uuid.New()
	_, err = db.Owner.Exec(ctx, "INSERT INTO auth.users (id, email) VALUES ($1, 'ev@example.com')", userID)
	require.NoError(t, err)
	ip := netip.MustParseAddr("2001:db8::7")

	for mask := range 16 {
		e := lockout.Event{Type: lockout.ProfileUpdated, Metadata: nil}
		if mask&1 != 0 {
			e.UserID = userID
		}
		if mask&2 != 0 {
			e.IP = ip
		}
		if mask&4 != 0 {
			e.UserAgent = fmt.Sprintf("agent-%d", mask)
		}
		if mask&8 != 0 {
			e.Metadata = map[string]any{"mask": mask}
		}
		ev.Log(ctx, e)
	}
	assert.Zero(t, testutil.ToFloat64(ev.Failures()), "no event may fail")

	rows, err := db.Owner.Query(ctx, `SELECT user_id, ip_address::text, user_agent, metadata FROM auth.security_events ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	mask := 0
	for rows.Next() {
		var uid *uuid.UUID
		var gotIP, ua *string
		var meta []byte
		require.NoError(t, rows.Scan(&uid, &gotIP, &ua, &meta))
		if mask&1 != 0 {
			require.NotNil(t, uid, "mask %d", mask)
			assert.Equal(t, userID, *uid)
		} else {
			assert.Nil(t, uid, "mask %d: absent user id must be NULL", mask)
		}
		if mask&2 != 0 {
			require.NotNil(t, gotIP, "mask %d", mask)
			assert.Equal(t, "2001:db8::7/128", *gotIP)
		} else {
			assert.Nil(t, gotIP, "mask %d: absent IP must be NULL", mask)
		}
		if mask&4 != 0 {
			require.NotNil(t, ua, "mask %d", mask)
			assert.Equal(t, fmt.Sprintf("agent-%d", mask), *ua)
		} else {
			assert.Nil(t, ua, "mask %d: absent user agent must be NULL", mask)
		}
		if mask&8 != 0 {
			var m map[string]int
			require.NoError(t, json.Unmarshal(meta, &m), "mask %d", mask)
			assert.Equal(t, mask, m["mask"])
		} else {
			assert.Nil(t, meta, "mask %d: absent metadata must be NULL, not 'null'::jsonb", mask)
		}
		mask++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 16, mask, "rows read back")
}

func TestEventLogFailureIsLoggedAndCountedNotReturned(t *testing.T) {
	t.Parallel()
	db := dbtest.DB(t)
	pool := db.Pool(t, true, nil)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	ev, err := lockout.NewEvents(lockout.EventsConfig{Pool: pool, Registerer: reg,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	pool.Close() // the database is gone for this writer

	ev.Log(context.Background(), lockout.Event{Type: lockout.Logout, UserID: uuid.New()})
	assert.Equal(t, 1.0, testutil.ToFloat64(ev.Failures()), "the failure is counted")
	assert.Contains(t, logs.String(), `"level":"WARN"`)
	assert.Contains(t, logs.String(), `"event_type":"LOGOUT"`)
	assert.Contains(t, logs.String(), "closed pool", "the cause is logged")
	n, err := testutil.GatherAndCount(reg, "mana_auth_security_event_failures_total")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the counter is registered")
}

func TestEventInsertCommitsWithItsTransaction(t *testing.T) {
	t.Parallel()
	db := dbtest.DB(t)
	ctx := context.Background()
	ev, err := lockout.NewEvents(lockout.EventsConfig{Pool: db.Runtime})
	require.NoError(t, err)

	tx, err := db.Runtime.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, ev.Insert(ctx, tx, lockout.Event{Type: lockout.PasswordChanged}))
	require.NoError(t, tx.Rollback(ctx))
	assert.Zero(t, count(t, db.Owner, "SELECT count(*) FROM auth.security_events"), "rolled back with its state change")

	tx, err = db.Runtime.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, ev.Insert(ctx, tx, lockout.Event{Type: lockout.PasswordChanged}))
	require.NoError(t, tx.Commit(ctx))
	assert.Equal(t, 1, count(t, db.Owner, "SELECT count(*) FROM auth.security_events"))

	require.Error(t, ev.Insert(ctx, nil, lockout.Event{Type: "NOT_A_TYPE"}), "unknown types are refused before any SQL")
}

func TestSecurityEventsAreAppendOnlyForTheRuntimeRole(t *testing.T) {
	t.Parallel()
	db := dbtest.DB(t)
	ctx := context.Background()
	ev, err := lockout.NewEvents(lockout.EventsConfig{Pool: db.Runtime})
	require.NoError(t, err)
	ev.Log(ctx, lockout.Event{Type: lockout.Register})
	_, err = db.Runtime.Exec(ctx, "UPDATE auth.security_events SET event_type = 'LOGOUT'")
	require.Error(t, err, "runtime role updated an audit row")
	_, err = db.Runtime.Exec(ctx, "DELETE FROM auth.security_events")
	require.Error(t, err, "runtime role deleted an audit row")
	_, err = db.Runtime.Exec(ctx, "DELETE FROM auth.login_attempts")
	require.Error(t, err, "runtime role deleted login attempts")
}

func BenchmarkEventLog(b *testing.B) {
	db := dbtest.DB(b)
	ev, err := lockout.NewEvents(lockout.EventsConfig{Pool: db.Runtime})
	require.NoError(b, err)
	ctx := context.Background()
	e := lockout.Event{Type: lockout.LoginFailure, IP: netip.MustParseAddr("198.51.100.1"), UserAgent: "bench",
		Metadata: map[string]any{"method": "password"}}
	b.ReportAllocs()
	for b.Loop() {
		ev.Log(ctx, e)
	}
	if f := testutil.ToFloat64(ev.Failures()); f != 0 {
		b.Fatalf("%v events failed", f)
	}
}

// TestEventsWorkInEveryExecMode writes an event with metadata through a
// pool in each of pgx's query exec modes: the server lets DATABASE_URL
// choose one (default_query_exec_mode), and behind PgBouncer in
// transaction mode the modes without prepared statements are the ones
// that work. Metadata bound as []byte is bytea to the modes that do not
// ask the server for parameter types (exec, simple_protocol), and the
// insert fails with 22P02; bound as text it is JSON in every mode.
func TestEventsWorkInEveryExecMode(t *testing.T) {
	t.Parallel()
	db := dbtest.DB(t)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		pool := db.Pool(t, true, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
		ev, err := lockout.NewEvents(lockout.EventsConfig{Pool: pool, Registerer: prometheus.NewRegistry()})
		require.NoError(t, err)
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		err = ev.Insert(ctx, tx, lockout.Event{Type: lockout.ProfileUpdated, Metadata: map[string]any{"mode": mode.String()}})
		if err != nil {
			require.NoError(t, tx.Rollback(ctx))
		}
		require.NoError(t, err, "exec mode %s", mode)
		require.NoError(t, tx.Commit(ctx))
		var n int
		require.NoError(t, db.Owner.QueryRow(ctx, `SELECT count(*) FROM auth.security_events WHERE metadata->>'mode' = $1`,
			mode.String()).Scan(&n))
		assert.Equal(t, 1, n, "exec mode %s: the event with its metadata", mode)
	}
}
