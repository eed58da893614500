package bootstrap_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/bootstrap"
	"github.com/mana-how/mana-auth/internal/testutil"
)

// clock is a fake time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// t0 has a non-UTC zone and sub-millisecond digits on purpose: the rows
// must carry it in UTC, cut to milliseconds.
var t0 = time.Date(2026, 3, 4, 7, 6, 7, 123456789, time.FixedZone("CET+2", 2*3600))

const t0Stamp = "2026-03-04T05:06:07.123Z"

func newBootstrapper(t testing.TB, pool *pgxpool.Pool, c *clock) *bootstrap.Bootstrapper {
	t.Helper()
	if c == nil {
		c = newClock(t0)
	}
	b, err := bootstrap.New(bootstrap.Config{Pool: pool, Now: c.Now})
	require.NoError(t, err)
	return b
}

// newUser inserts a user (as the owner) and returns its id.
func newUser(t testing.TB, db *testutil.Database) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := db.Owner.Exec(context.Background(), `INSERT INTO auth.users (id, email) VALUES ($1, $2)`,
		id, id.String()+"@example.test")
	require.NoError(t, err)
	return id
}

// syncRow is one mana_sync.sync_changes row, read as the owner.
type syncRow struct {
	AppID     string
	Table     string
	RecordID  string
	UserID    *uuid.UUID
	SpaceID   *uuid.UUID
	Op        string
	Data      string // jsonb as text
	FieldMeta string // jsonb as text
	ClientID  *string
	Origin    string
	CreatedAt time.Time
}

// rowsOf returns every row of one record, oldest first.
func rowsOf(t testing.TB, db *testutil.Database, app, table string, record uuid.UUID) []syncRow {
	t.Helper()
	rows, err := db.Owner.Query(context.Background(), `SELECT app_id, table_name, record_id, user_id, space_id, op,
		coalesce(data::text, ''), coalesce(field_meta::text, ''), client_id, origin, created_at
		FROM mana_sync.sync_changes WHERE app_id = $1 AND table_name = $2 AND record_id = $3 ORDER BY id`,
		app, table, record.String())
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (syncRow, error) {
		var r syncRow
		err := row.Scan(&r.AppID, &r.Table, &r.RecordID, &r.UserID, &r.SpaceID, &r.Op, &r.Data, &r.FieldMeta,
			&r.ClientID, &r.Origin, &r.CreatedAt)
		return r, err
	})
	require.NoError(t, err)
	return out
}

func userRows(t testing.TB, db *testutil.Database, user uuid.UUID) []syncRow {
	t.Helper()
	return rowsOf(t, db, bootstrap.UserContextApp, bootstrap.UserContextTable, user)
}

func spaceRows(t testing.TB, db *testutil.Database, space uuid.UUID) []syncRow {
	t.Helper()
	return rowsOf(t, db, bootstrap.KontextApp, bootstrap.KontextDocTable, space)
}

func countRows(t testing.TB, db *testutil.Database) int {
	t.Helper()
	var n int
	require.NoError(t, db.Owner.QueryRow(context.Background(), "SELECT count(*) FROM mana_sync.sync_changes").Scan(&n))
	return n
}

// fakeSpaces is a SpaceLister over a fixed map.
type fakeSpaces struct {
	mu     sync.Mutex
	spaces map[uuid.UUID][]bootstrap.Space
	err    error
	calls  int
}

func (f *fakeSpaces) set(user uuid.UUID, spaces ...bootstrap.Space) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.spaces == nil {
		f.spaces = map[uuid.UUID][]bootstrap.Space{}
	}
	f.spaces[user] = spaces
}

func (f *fakeSpaces) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeSpaces) SpacesOf(_ context.Context, user uuid.UUID) ([]bootstrap.Space, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return append([]bootstrap.Space(nil), f.spaces[user]...), nil
}

var _ bootstrap.SpaceLister = (*fakeSpaces)(nil)

// jsonOf encodes v for JSONEq.
func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func ptr[T any](v T) *T { return &v }
