package bootstrap_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/bootstrap"
	"github.com/mana-how/mana-auth/internal/testutil"
)

func TestNewNeedsPool(t *testing.T) {
	_, err := bootstrap.New(bootstrap.Config{})
	require.Error(t, err)
}

func TestFieldMeta(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -5*3600))
	for _, tc := range []struct {
		name string
		data map[string]any
		want map[string]bootstrap.FieldStamp
	}{
		{"nil data", nil, map[string]bootstrap.FieldStamp{}},
		{"user context", bootstrap.UserContextData(), map[string]bootstrap.FieldStamp{}},
		{"kontext doc", bootstrap.KontextDocData(), map[string]bootstrap.FieldStamp{
			"blocks": {UpdatedAt: "2026-01-02T08:04:05.000Z", Origin: "system"}}},
		{"top-level fields only", map[string]any{"a": 1, "b": map[string]any{"nested": true}}, map[string]bootstrap.FieldStamp{
			"a": {UpdatedAt: "2026-01-02T08:04:05.000Z", Origin: "system"},
			"b": {UpdatedAt: "2026-01-02T08:04:05.000Z", Origin: "system"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bootstrap.FieldMeta(tc.data, at)
			require.NotNil(t, got, "data %v", tc.data)
			assert.Equal(t, tc.want, got, "data %v", tc.data)
		})
	}
	assert.JSONEq(t, `{"blocks":{"updatedAt":"2026-01-02T08:04:05.000Z","origin":"system"}}`,
		jsonOf(t, bootstrap.FieldMeta(bootstrap.KontextDocData(), at)), "wire form")
}

func TestDefaultDocumentsAreFresh(t *testing.T) {
	d := bootstrap.KontextDocData()
	d["blocks"] = []any{"changed"}
	d["extra"] = 1
	assert.Equal(t, map[string]any{"blocks": []any{}}, bootstrap.KontextDocData(), "a caller's change must not leak")
	u := bootstrap.UserContextData()
	u["x"] = 1
	assert.Empty(t, bootstrap.UserContextData())
}

// The exact rows, every column.
func TestSingletonRows(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	b := newBootstrapper(t, db.Runtime, nil)
	ctx := context.Background()
	user := newUser(t, db)
	space := uuid.New()

	ok, err := b.BootstrapUserSingletons(ctx, user)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = b.BootstrapSpaceSingletons(ctx, space, user)
	require.NoError(t, err)
	require.True(t, ok)

	wantAt := time.Date(2026, 3, 4, 5, 6, 7, 123000000, time.UTC)

	rows := userRows(t, db, user)
	require.Len(t, rows, 1)
	r := rows[0]
	assert.Equal(t, "profile", r.AppID)
	assert.Equal(t, "userContext", r.Table)
	assert.Equal(t, user.String(), r.RecordID)
	assert.Equal(t, &user, r.UserID)
	assert.Nil(t, r.SpaceID, "space_id of the user context is NULL")
	assert.Equal(t, "insert", r.Op)
	assert.JSONEq(t, `{}`, r.Data)
	assert.JSONEq(t, `{}`, r.FieldMeta, "no field, no stamp")
	assert.Equal(t, ptr("system:bootstrap"), r.ClientID)
	assert.Equal(t, "system", r.Origin)
	assert.True(t, wantAt.Equal(r.CreatedAt), "created_at: got %v, want %v", r.CreatedAt, wantAt)

	rows = spaceRows(t, db, space)
	require.Len(t, rows, 1)
	r = rows[0]
	assert.Equal(t, "kontext", r.AppID)
	assert.Equal(t, "kontextDoc", r.Table)
	assert.Equal(t, space.String(), r.RecordID)
	assert.Equal(t, &space, r.SpaceID, "space_id = record_id = the space")
	assert.Equal(t, &user, r.UserID, "user_id = the owner")
	assert.Equal(t, "insert", r.Op)
	assert.JSONEq(t, `{"blocks":[]}`, r.Data)
	assert.JSONEq(t, `{"blocks":{"updatedAt":"`+t0Stamp+`","origin":"system"}}`, r.FieldMeta)
	assert.JSONEq(t, jsonOf(t, bootstrap.FieldMeta(bootstrap.KontextDocData(), t0)), r.FieldMeta,
		"the stored field_meta is the shared helper's")
	assert.Equal(t, ptr("system:bootstrap"), r.ClientID)
	assert.Equal(t, "system", r.Origin)
	assert.True(t, wantAt.Equal(r.CreatedAt), "created_at: got %v, want %v", r.CreatedAt, wantAt)
}

func TestIdempotent(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	c := newClock(t0)
	b := newBootstrapper(t, db.Runtime, c)
	ctx := context.Background()
	user := newUser(t, db)
	space := uuid.New()

	for i, want := range []bool{true, false, false} {
		ok, err := b.BootstrapUserSingletons(ctx, user)
		require.NoError(t, err)
		assert.Equal(t, want, ok, "user call %d", i+1)
		ok, err = b.BootstrapSpaceSingletons(ctx, space, user)
		require.NoError(t, err)
		assert.Equal(t, want, ok, "space call %d", i+1)
		c.Advance(time.Hour)
	}
	// The transaction variants see the same rows.
	require.NoError(t, pgx.BeginFunc(ctx, db.Runtime, func(tx pgx.Tx) error {
		ok, err := b.BootstrapUserSingletonsTx(ctx, tx, user)
		require.NoError(t, err)
		assert.False(t, ok)
		ok, err = b.BootstrapSpaceSingletonsTx(ctx, tx, space, user)
		require.NoError(t, err)
		assert.False(t, ok)
		return nil
	}))

	rows := userRows(t, db, user)
	require.Len(t, rows, 1)
	assert.JSONEq(t, `{}`, rows[0].FieldMeta)
	rows = spaceRows(t, db, space)
	require.Len(t, rows, 1)
	assert.Contains(t, rows[0].FieldMeta, t0Stamp, "the first call's row, untouched by the later ones")
	assert.Equal(t, 2, countRows(t, db))
}

// Ten concurrent calls insert one row. An existence check followed by an
// insert (SELECT … then INSERT, or INSERT … WHERE NOT EXISTS alone) would
// let every caller see "absent" before any of them commits, and insert ten
// rows; the unique index makes nine of them wait for the first and insert
// nothing.
func TestConcurrentCallsInsertOneRow(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	b := newBootstrapper(t, db.Runtime, nil)
	user := newUser(t, db)
	space := uuid.New()

	for _, tc := range []struct {
		name string
		call func(ctx context.Context, i int) (bool, error)
		rows func() []syncRow
	}{
		{"user context", func(ctx context.Context, _ int) (bool, error) {
			return b.BootstrapUserSingletons(ctx, user)
		}, func() []syncRow { return userRows(t, db, user) }},
		{"kontext doc, half of them in transactions", func(ctx context.Context, i int) (bool, error) {
			if i%2 == 0 {
				return b.BootstrapSpaceSingletons(ctx, space, user)
			}
			var ok bool
			err := pgx.BeginFunc(ctx, db.Runtime, func(tx pgx.Tx) (err error) {
				ok, err = b.BootstrapSpaceSingletonsTx(ctx, tx, space, user)
				return err
			})
			return ok, err
		}, func() []syncRow { return spaceRows(t, db, space) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 10
			start := make(chan struct{})
			var wg sync.WaitGroup
			results := make([]bool, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					<-start
					results[i], errs[i] = tc.call(context.Background(), i)
				})
			}
			close(start)
			wg.Wait()
			inserted := 0
			for i := range n {
				require.NoError(t, errs[i], "call %d", i)
				if results[i] {
					inserted++
				}
			}
			assert.Equal(t, 1, inserted, "calls that report an insert: %v", results)
			assert.Len(t, tc.rows(), 1)
		})
	}
}

// The unique index decides, deterministically: while one transaction holds
// an uncommitted bootstrap row, a second caller cannot see it (its NOT
// EXISTS passes) and waits on the index; it inserts nothing when the first
// commits and inserts the row when the first rolls back.
func TestSecondCallerWaitsForTheFirst(t *testing.T) {
	t.Parallel()
	for _, commit := range []bool{true, false} {
		name := "first commits"
		if !commit {
			name = "first rolls back"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := testutil.DB(t)
			b := newBootstrapper(t, db.Runtime, nil)
			ctx := context.Background()
			user := newUser(t, db)

			tx, err := db.Runtime.Begin(ctx)
			require.NoError(t, err)
			ok, err := b.BootstrapUserSingletonsTx(ctx, tx, user)
			require.NoError(t, err)
			require.True(t, ok)

			type answer struct {
				ok  bool
				err error
			}
			second := make(chan answer, 1)
			go func() {
				ok, err := b.BootstrapUserSingletons(ctx, user)
				second <- answer{ok, err}
			}()
			waitForLockWait(t, db)
			select {
			case a := <-second:
				t.Fatalf("the second call returned (%v, %v) while the first row was uncommitted", a.ok, a.err)
			default:
			}
			if commit {
				require.NoError(t, tx.Commit(ctx))
			} else {
				require.NoError(t, tx.Rollback(ctx))
			}
			a := <-second
			require.NoError(t, a.err)
			assert.Equal(t, !commit, a.ok, "second call inserted")
			assert.Len(t, userRows(t, db, user), 1)
		})
	}
}

// waitForLockWait returns once a backend of db waits for a lock.
func waitForLockWait(t testing.TB, db *testutil.Database) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		var n int
		require.NoError(t, db.Owner.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n))
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no backend started waiting for the uncommitted bootstrap row")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// The database itself refuses a second bootstrap row for a record, whoever
// writes it; client rows of the record are not limited.
func TestIndexAllowsOneBootstrapRowPerRecord(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	user := newUser(t, db)
	b := newBootstrapper(t, db.Runtime, nil)
	_, err := b.BootstrapUserSingletons(ctx, user)
	require.NoError(t, err)

	const ins = `INSERT INTO mana_sync.sync_changes (app_id, table_name, record_id, user_id, op, data, client_id, origin)
		VALUES ('profile', 'userContext', $1, $2, $3, '{}', $4, $5)`
	_, err = db.Runtime.Exec(ctx, ins, user.String(), user, "insert", "system:bootstrap", "system")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "23505", pgErr.Code)
	assert.Equal(t, "sync_changes_bootstrap_once", pgErr.ConstraintName)

	for _, op := range []string{"update", "update"} {
		_, err = db.Runtime.Exec(ctx, ins, user.String(), user, op, "device-1", "client")
		require.NoError(t, err, "client rows of a record are many")
	}
	assert.Len(t, userRows(t, db, user), 3)
}

// A record a client wrote first is not bootstrapped: a default must not
// shadow the client's data.
func TestRecordWrittenByAClientIsLeftAlone(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	user := newUser(t, db)
	space := uuid.New()
	_, err := db.Runtime.Exec(ctx, `INSERT INTO mana_sync.sync_changes
		(app_id, table_name, record_id, user_id, space_id, op, data, client_id, origin)
		VALUES ('kontext', 'kontextDoc', $1, $2, $3, 'insert', '{"blocks":["mine"]}', 'device-1', 'client')`,
		space.String(), user, space)
	require.NoError(t, err)

	b := newBootstrapper(t, db.Runtime, nil)
	ok, err := b.BootstrapSpaceSingletons(ctx, space, user)
	require.NoError(t, err)
	assert.False(t, ok, "the record existed")
	rows := spaceRows(t, db, space)
	require.Len(t, rows, 1)
	assert.Equal(t, ptr("device-1"), rows[0].ClientID)

	// Control: another space of the same user is bootstrapped.
	ok, err = b.BootstrapSpaceSingletons(ctx, uuid.New(), user)
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestRowsCascadeWithTheUser(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	b := newBootstrapper(t, db.Runtime, nil)
	gone, kept := newUser(t, db), newUser(t, db)
	goneSpace, keptSpace := uuid.New(), uuid.New()
	for _, u := range []struct{ user, space uuid.UUID }{{gone, goneSpace}, {kept, keptSpace}} {
		_, err := b.BootstrapUserSingletons(ctx, u.user)
		require.NoError(t, err)
		_, err = b.BootstrapSpaceSingletons(ctx, u.space, u.user)
		require.NoError(t, err)
	}
	require.Equal(t, 4, countRows(t, db))

	// As the runtime role, which has no DELETE on sync_changes: the
	// cascade runs with the table owner's rights.
	tag, err := db.Runtime.Exec(ctx, "DELETE FROM auth.users WHERE id = $1", gone)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())

	assert.Empty(t, userRows(t, db, gone))
	assert.Empty(t, spaceRows(t, db, goneSpace), "the space row goes with its owner")
	assert.Len(t, userRows(t, db, kept), 1)
	assert.Len(t, spaceRows(t, db, keptSpace), 1)
}

func TestTxVariantsJoinTheCallersTransaction(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	b := newBootstrapper(t, db.Runtime, nil)

	t.Run("rolled back with it", func(t *testing.T) {
		user, space := newUser(t, db), uuid.New()
		tx, err := db.Runtime.Begin(ctx)
		require.NoError(t, err)
		ok, err := b.BootstrapUserSingletonsTx(ctx, tx, user)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = b.BootstrapSpaceSingletonsTx(ctx, tx, space, user)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Empty(t, userRows(t, db, user), "invisible before commit")
		require.NoError(t, tx.Rollback(ctx))
		assert.Empty(t, userRows(t, db, user))
		assert.Empty(t, spaceRows(t, db, space))
	})

	t.Run("a failure leaves the transaction usable", func(t *testing.T) {
		user, space := newUser(t, db), uuid.New()
		tx, err := db.Runtime.Begin(ctx)
		require.NoError(t, err)
		defer func() {
			if err := tx.Rollback(ctx); !errors.Is(err, pgx.ErrTxClosed) {
				require.NoError(t, err)
			}
		}()
		_, err = tx.Exec(ctx, "SELECT 1") // the caller's own work before
		require.NoError(t, err)

		ok, err := b.BootstrapSpaceSingletonsTx(ctx, tx, space, uuid.New()) // no such owner
		require.Error(t, err)
		assert.False(t, ok)
		assert.Equal(t, autherr.Conflict, autherr.CodeOf(err), "foreign key: %v", err)

		// Without the savepoint this would fail with 25P02 (transaction aborted).
		ok, err = b.BootstrapUserSingletonsTx(ctx, tx, user)
		require.NoError(t, err)
		assert.True(t, ok)
		ok, err = b.BootstrapSpaceSingletonsTx(ctx, tx, space, user)
		require.NoError(t, err)
		assert.True(t, ok, "the failed attempt left nothing behind")
		require.NoError(t, tx.Commit(ctx))
		assert.Len(t, userRows(t, db, user), 1)
		assert.Len(t, spaceRows(t, db, space), 1)
	})

	t.Run("schema drift leaves the transaction usable", func(t *testing.T) {
		t.Parallel()
		db := testutil.DB(t) // its own: the drift must not reach the other subtests
		b := newBootstrapper(t, db.Runtime, nil)
		user := newUser(t, db)
		_, err := db.Owner.Exec(ctx, "ALTER TABLE mana_sync.sync_changes RENAME COLUMN field_meta TO fm")
		require.NoError(t, err)
		tx, err := db.Runtime.Begin(ctx)
		require.NoError(t, err)
		defer func() {
			if err := tx.Rollback(ctx); !errors.Is(err, pgx.ErrTxClosed) {
				require.NoError(t, err)
			}
		}()
		// The statement fails to prepare (42703): pgx prepares before it
		// sends, so the savepoint must already be set by then.
		_, err = b.BootstrapUserSingletonsTx(ctx, tx, user)
		require.Error(t, err)
		assert.True(t, autherr.IsUnavailable(err), "got %v", err)
		_, err = tx.Exec(ctx, "UPDATE auth.users SET name = 'still usable' WHERE id = $1", user)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		var name string
		require.NoError(t, db.Owner.QueryRow(ctx, "SELECT name FROM auth.users WHERE id = $1", user).Scan(&name))
		assert.Equal(t, "still usable", name)
	})

	t.Run("an aborted transaction is reported", func(t *testing.T) {
		user := newUser(t, db)
		tx, err := db.Runtime.Begin(ctx)
		require.NoError(t, err)
		defer func() { require.NoError(t, tx.Rollback(ctx)) }()
		_, err = tx.Exec(ctx, "SELECT 1/0")
		require.Error(t, err)
		_, err = b.BootstrapUserSingletonsTx(ctx, tx, user)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "25P02", pgErr.Code, "in_failed_sql_transaction")
	})

	t.Run("nil transaction", func(t *testing.T) {
		_, err := b.BootstrapUserSingletonsTx(ctx, nil, newUser(t, db))
		require.Error(t, err)
	})
}

func TestInvalidIDsAreRefusedBeforeSQL(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	pool := db.Pool(t, true, nil)
	b := newBootstrapper(t, pool, nil)
	pool.Close() // any SQL would fail with a different error
	ctx := context.Background()
	id := uuid.New()

	_, err := b.BootstrapUserSingletons(ctx, uuid.Nil)
	require.ErrorIs(t, err, bootstrap.ErrNoUser)
	assert.Equal(t, autherr.Unauthorized, autherr.CodeOf(err))
	_, err = b.Reconcile(ctx, uuid.Nil, nil)
	require.ErrorIs(t, err, bootstrap.ErrNoUser)

	for _, ids := range [][2]uuid.UUID{{uuid.Nil, id}, {id, uuid.Nil}} {
		_, err = b.BootstrapSpaceSingletons(ctx, ids[0], ids[1])
		require.ErrorIs(t, err, bootstrap.ErrInvalidSpace, "space %s owner %s", ids[0], ids[1])
		assert.Equal(t, autherr.Internal, autherr.CodeOf(err))
	}
}

func TestUnknownUserIsConflict(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	b := newBootstrapper(t, db.Runtime, nil)
	_, err := b.BootstrapUserSingletons(context.Background(), uuid.New())
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "23503", pgErr.Code)
	assert.Equal(t, autherr.Conflict, autherr.CodeOf(err))
	assert.Zero(t, countRows(t, db))
}

func TestDatabaseDownIsUnavailable(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	proxy := testutil.NewProxy(t, testutil.ServerAddr(t))
	pool := testutil.OpenPool(t, proxy.URL(db.RuntimeURL))
	b := newBootstrapper(t, pool, nil)
	ctx := context.Background()
	user := newUser(t, db)

	proxy.Cut()
	for name, call := range map[string]func() (bool, error){
		"user":  func() (bool, error) { return b.BootstrapUserSingletons(ctx, user) },
		"space": func() (bool, error) { return b.BootstrapSpaceSingletons(ctx, uuid.New(), user) },
		"reconcile": func() (bool, error) {
			_, err := b.Reconcile(ctx, user, nil)
			return false, err
		},
	} {
		ok, err := call()
		require.Error(t, err, name)
		assert.False(t, ok, name)
		assert.True(t, autherr.IsUnavailable(err), "%s: got %v", name, err)
	}
	proxy.Restore()
	ok, err := b.BootstrapUserSingletons(ctx, user)
	require.NoError(t, err, "works again once the database is back")
	assert.True(t, ok, "nothing was inserted during the outage")
}

// The runtime role appends and reads; it cannot rewrite or delete the log.
// The CHECKs hold for every writer.
func TestSchemaRules(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	ctx := context.Background()
	user := newUser(t, db)
	b := newBootstrapper(t, db.Runtime, nil)
	_, err := b.BootstrapUserSingletons(ctx, user)
	require.NoError(t, err)

	for _, stmt := range []string{
		"UPDATE mana_sync.sync_changes SET data = '{\"x\":1}'",
		"DELETE FROM mana_sync.sync_changes",
	} {
		_, err := db.Runtime.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, stmt)
		assert.Equal(t, "42501", pgErr.Code, stmt)
	}

	for _, tc := range []struct {
		name, op, data, client, origin, constraint string
	}{
		{"unknown op", "upsert", `{}`, "device-1", "client", "sync_changes_op_check"},
		{"unknown origin", "insert", `{}`, "device-1", "server", "sync_changes_origin_check"},
		{"data not an object", "insert", `[]`, "device-1", "client", "sync_changes_data_object"},
		{"bootstrap row from a client", "insert", `{}`, "system:bootstrap", "client", "sync_changes_bootstrap_shape"},
		{"bootstrap row as an update", "update", `{}`, "system:bootstrap", "system", "sync_changes_bootstrap_shape"},
	} {
		_, err := db.Owner.Exec(ctx, `INSERT INTO mana_sync.sync_changes (app_id, table_name, record_id, op, data, client_id, origin)
			VALUES ('a', 't', $1, $2, $3::jsonb, $4, $5)`, uuid.NewString(), tc.op, tc.data, tc.client, tc.origin)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, tc.name)
		assert.Equal(t, "23514", pgErr.Code, tc.name)
		assert.Equal(t, tc.constraint, pgErr.ConstraintName, tc.name)
	}
	_, err = db.Owner.Exec(ctx, `INSERT INTO mana_sync.sync_changes (app_id, table_name, record_id, op, data, client_id, origin)
		VALUES ('a', 't', 'r', 'delete', NULL, 'device-1', 'client')`)
	require.NoError(t, err, "control: a valid client row (a delete without data)")
}
