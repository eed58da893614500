package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/autherr"
)

// The values that mark a bootstrap row in mana_sync.sync_changes.
const (
	// ClientID is the client_id of every row this package writes; the
	// unique index sync_changes_bootstrap_once allows one such row per
	// record.
	ClientID = "system:bootstrap"
	// Origin is the origin of every row this package writes, and of every
	// field in its field_meta.
	Origin = "system"
)

// The records this package bootstraps (app_id, table_name).
const (
	UserContextApp   = "profile"     // app_id of a user's context row
	UserContextTable = "userContext" // table_name of a user's context row; record_id = user id
	KontextApp       = "kontext"     // app_id of a space's kontext document
	KontextDocTable  = "kontextDoc"  // table_name of a space's kontext document; record_id = space id
)

// TimeFormat is the layout of FieldStamp.UpdatedAt: RFC 3339 in UTC with
// exactly three fractional digits, as JavaScript's Date.toISOString writes
// it, so clients compare stamps as they compare their own.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// UserContextData returns the empty-default document of a user's context
// row: {} — no field is set, so nothing the user's clients write later can
// lose against a server default, and field_meta is {} as well.
func UserContextData() map[string]any { return map[string]any{} }

// KontextDocData returns the empty-default document of a space's kontext
// document: {"blocks": []} — a document with no blocks yet, its one field
// present so clients can append to it without inventing its shape.
func KontextDocData() map[string]any { return map[string]any{"blocks": []any{}} }

// FieldStamp is the field_meta entry of one top-level field.
type FieldStamp struct {
	UpdatedAt string `json:"updatedAt"` // TimeFormat
	Origin    string `json:"origin"`    // always Origin
}

// FieldMeta is the one helper that builds the field_meta of a bootstrap
// row from its data: for every top-level field of data the stamp
// {updatedAt: at in TimeFormat, origin: "system"}. Both singletons use it;
// the result is never nil.
func FieldMeta(data map[string]any, at time.Time) map[string]FieldStamp {
	meta := make(map[string]FieldStamp, len(data))
	stamp := FieldStamp{UpdatedAt: at.UTC().Format(TimeFormat), Origin: Origin}
	for k := range data {
		meta[k] = stamp
	}
	return meta
}

var (
	// ErrNoUser reports an empty (nil) user id: UNAUTHORIZED, refused before
	// any SQL runs.
	ErrNoUser = autherr.Wrap(autherr.Unauthorized, errors.New("bootstrap: no user id"), "")
	// ErrInvalidSpace reports a space with an empty (nil) id or owner:
	// INTERNAL (a caller bug), refused before any SQL runs.
	ErrInvalidSpace = autherr.Wrap(autherr.Internal, errors.New("bootstrap: space without id or owner"), "")
)

// Config configures a Bootstrapper.
type Config struct {
	// Pool runs the statements of the methods that take no transaction,
	// normally as the runtime role; required.
	Pool *pgxpool.Pool
	// Logger receives the singletons Reconcile had to insert (INFO: one
	// was missing); nil: slog.Default().
	Logger *slog.Logger
	Now    func() time.Time // created_at and field_meta stamps; nil: time.Now
}

// Bootstrapper inserts the server-side singleton rows of
// mana_sync.sync_changes, each at most once. It is safe for concurrent use.
type Bootstrapper struct {
	pool      *pgxpool.Pool
	logger    *slog.Logger // never nil
	cfgLogger *slog.Logger // as configured, possibly nil
	now       func() time.Time
}

// New validates cfg.
func New(cfg Config) (*Bootstrapper, error) {
	if cfg.Pool == nil {
		return nil, errors.New("bootstrap: Config.Pool is required")
	}
	b := &Bootstrapper{pool: cfg.Pool, logger: cfg.Logger, cfgLogger: cfg.Logger, now: cfg.Now}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}

// singleton is one bootstrap row to insert.
type singleton struct {
	app, table, record string
	user               uuid.UUID
	space              *uuid.UUID // nil: NULL
	data               map[string]any
}

func userSingleton(userID uuid.UUID) (singleton, error) {
	if userID == uuid.Nil {
		return singleton{}, ErrNoUser
	}
	return singleton{app: UserContextApp, table: UserContextTable, record: userID.String(),
		user: userID, data: UserContextData()}, nil
}

func spaceSingleton(spaceID, ownerUserID uuid.UUID) (singleton, error) {
	if spaceID == uuid.Nil || ownerUserID == uuid.Nil {
		return singleton{}, ErrInvalidSpace
	}
	return singleton{app: KontextApp, table: KontextDocTable, record: spaceID.String(),
		user: ownerUserID, space: &spaceID, data: KontextDocData()}, nil
}

// insertSQL adds the bootstrap row unless the record has any row yet (a
// client's included: a default must not shadow what a client already
// wrote) and — the part that makes it race-free — unless the unique index
// sync_changes_bootstrap_once already holds one. Concurrent callers that
// all pass the NOT EXISTS (none sees the others' uncommitted rows) meet at
// the index: one inserts, the others wait for its transaction and then do
// nothing; RETURNING then yields no row. Parameters are cast because an
// INSERT … SELECT does not type them from the target columns.
const insertSQL = `INSERT INTO mana_sync.sync_changes
	(app_id, table_name, record_id, user_id, space_id, op, data, field_meta, client_id, origin, created_at)
SELECT $1::text, $2::text, $3::text, $4::uuid, $5::uuid, 'insert', $6::jsonb, $7::jsonb, '` + ClientID + `', '` + Origin + `', $8::timestamptz
WHERE NOT EXISTS (SELECT 1 FROM mana_sync.sync_changes WHERE app_id = $1::text AND table_name = $2::text AND record_id = $3::text)
ON CONFLICT (app_id, table_name, record_id) WHERE client_id = '` + ClientID + `' DO NOTHING
RETURNING id`

// args are the arguments of insertSQL for s, stamped with the current
// time (milliseconds, so created_at and field_meta carry the same instant).
func (b *Bootstrapper) args(s singleton) ([]any, error) {
	at := b.now().UTC().Truncate(time.Millisecond)
	data, err := json.Marshal(s.data)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: encode %s data: %w", s.table, err)
	}
	meta, err := json.Marshal(FieldMeta(s.data, at))
	if err != nil {
		return nil, fmt.Errorf("bootstrap: encode %s field_meta: %w", s.table, err)
	}
	return []any{s.app, s.table, s.record, s.user, s.space, string(data), string(meta), at}, nil
}

// scanInserted reads the answer of insertSQL: a row when inserted, none
// when the record had one already.
func scanInserted(row pgx.Row, s singleton) (bool, error) {
	var id int64
	err := row.Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bootstrap: insert %s/%s %s: %w", s.app, s.table, s.record, err)
	}
	return true, nil
}

// BootstrapUserSingletons inserts userID's context row (app_id "profile",
// table_name "userContext", record_id and user_id the user, space_id NULL,
// data UserContextData) unless the record has a row already. inserted
// reports whether this call added it; calling again, or concurrently, adds
// nothing and returns false.
//
// Errors: UNAUTHORIZED (ErrNoUser) for a nil user; CONFLICT when the user
// does not exist (foreign key); SERVICE_UNAVAILABLE when the database is
// unreachable or its schema drifted; classify with autherr.
func (b *Bootstrapper) BootstrapUserSingletons(ctx context.Context, userID uuid.UUID) (inserted bool, err error) {
	s, err := userSingleton(userID)
	if err != nil {
		return false, err
	}
	return b.insertPool(ctx, s)
}

// BootstrapSpaceSingletons inserts spaceID's kontext document (app_id
// "kontext", table_name "kontextDoc", record_id and space_id the space,
// user_id its owner, data KontextDocData) unless the record has a row
// already; inserted as for BootstrapUserSingletons.
//
// Errors: INTERNAL (ErrInvalidSpace) for a nil space or owner; otherwise
// as BootstrapUserSingletons (CONFLICT when the owner does not exist). The
// space itself is not checked: space_id has no foreign key.
func (b *Bootstrapper) BootstrapSpaceSingletons(ctx context.Context, spaceID, ownerUserID uuid.UUID) (inserted bool, err error) {
	s, err := spaceSingleton(spaceID, ownerUserID)
	if err != nil {
		return false, err
	}
	return b.insertPool(ctx, s)
}

// BootstrapUserSingletonsTx is BootstrapUserSingletons inside the caller's
// transaction tx: the row commits or rolls back with it (until then,
// concurrent callers for the same user wait for tx). It runs under a
// savepoint, so when it fails tx is left as it was and still usable — the
// caller decides whether the failure fails its transaction (a signup that
// must not fail for its bootstrap logs the error and commits).
func (b *Bootstrapper) BootstrapUserSingletonsTx(ctx context.Context, tx pgx.Tx, userID uuid.UUID) (inserted bool, err error) {
	s, err := userSingleton(userID)
	if err != nil {
		return false, err
	}
	return b.insertTx(ctx, tx, s)
}

// BootstrapSpaceSingletonsTx is BootstrapSpaceSingletons inside the
// caller's transaction tx, under a savepoint as BootstrapUserSingletonsTx:
// a space and its kontext document commit together.
func (b *Bootstrapper) BootstrapSpaceSingletonsTx(ctx context.Context, tx pgx.Tx, spaceID, ownerUserID uuid.UUID) (inserted bool, err error) {
	s, err := spaceSingleton(spaceID, ownerUserID)
	if err != nil {
		return false, err
	}
	return b.insertTx(ctx, tx, s)
}

// insertPool runs the insert as a statement of its own.
func (b *Bootstrapper) insertPool(ctx context.Context, s singleton) (bool, error) {
	args, err := b.args(s)
	if err != nil {
		return false, err
	}
	return scanInserted(b.pool.QueryRow(ctx, insertSQL, args...), s)
}

// savepoint is the name insertTx uses; a caller's savepoint of the same
// name is shadowed until RELEASE, as PostgreSQL defines.
const savepoint = "mana_auth_bootstrap"

// insertTx runs the insert in tx under a savepoint, in two round trips:
// SAVEPOINT, then the INSERT and RELEASE as one batch. The savepoint is set
// first and on its own because pgx prepares a batch's new statements before
// sending it, and a statement that fails to prepare (schema drift) aborts
// the transaction too. When anything after the savepoint fails, the
// savepoint is rolled back, so tx is usable again.
func (b *Bootstrapper) insertTx(ctx context.Context, tx pgx.Tx, s singleton) (inserted bool, err error) {
	if tx == nil {
		return false, errors.New("bootstrap: nil transaction")
	}
	args, err := b.args(s)
	if err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, "SAVEPOINT "+savepoint); err != nil {
		// tx was unusable already (aborted, closed, connection lost);
		// nothing of ours to undo.
		return false, fmt.Errorf("bootstrap: savepoint: %w", err)
	}
	batch := &pgx.Batch{}
	batch.Queue(insertSQL, args...)
	batch.Queue("RELEASE SAVEPOINT " + savepoint)
	res := tx.SendBatch(ctx, batch)
	inserted, err = scanInserted(res.QueryRow(), s)
	if err == nil {
		if _, err = res.Exec(); err != nil {
			err = fmt.Errorf("bootstrap: release savepoint: %w", err)
		}
	}
	// After a failed statement Close reports that same error again, so
	// its answer matters only when everything before it succeeded.
	if cErr := closeBatch(res); err == nil {
		err = cErr
	}
	if err != nil {
		if _, rbErr := tx.Exec(context.WithoutCancel(ctx), "ROLLBACK TO SAVEPOINT "+savepoint+"; RELEASE SAVEPOINT "+savepoint); rbErr != nil {
			err = errors.Join(err, fmt.Errorf("bootstrap: roll back to savepoint: %w", rbErr))
		}
		return false, err
	}
	return inserted, nil
}

func closeBatch(res pgx.BatchResults) error {
	if err := res.Close(); err != nil {
		return fmt.Errorf("bootstrap: batch: %w", err)
	}
	return nil
}
