package grantpg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/grant"
)

// UserSetting is the transaction-local setting the row-level security
// policies read the current user from.
const UserSetting = "app.current_user_id"

// writeTimeout bounds one audit write, which runs even when the request
// that caused it was cancelled (the attempt happened; its row must land).
const writeTimeout = 10 * time.Second

// Config configures a Store.
type Config struct {
	// Pool connects as the runtime role (row-level security applies);
	// required.
	Pool *pgxpool.Pool
	Now  func() time.Time // for attempts without a time; nil: time.Now
}

// Store is the Postgres decrypt audit.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

var _ grant.Auditor = (*Store)(nil)

// New validates cfg.
func New(cfg Config) (*Store, error) {
	if cfg.Pool == nil {
		return nil, errors.New("grantpg: Config.Pool is required")
	}
	s := &Store{pool: cfg.Pool, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// RecordUnwrap appends a's row. The row belongs to a.UserID when that user
// exists, else to nobody (user_id NULL: a forged or garbage id is kept out
// of every user's view and cannot fail the insert). Optional fields at their
// zero value are stored as NULL; a zero At means now. The write survives
// the cancellation of ctx, within its own timeout. Errors: the database's,
// wrapped.
func (s *Store) RecordUnwrap(ctx context.Context, a grant.Attempt) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	at := a.At
	if at.IsZero() {
		at = s.now()
	}
	var mission, kid, expires, reason any
	if a.MissionID != "" {
		mission = a.MissionID
	}
	if a.SignatureKID != "" {
		kid = a.SignatureKID
	}
	if !a.ExpiresAt.IsZero() {
		expires = a.ExpiresAt
	}
	if a.Reason != "" {
		reason = string(a.Reason)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var owner any // NULL unless the user exists
		if a.UserID != uuid.Nil {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM auth.users WHERE id = $1)`, a.UserID).Scan(&exists); err != nil {
				return fmt.Errorf("grantpg: look up user: %w", err)
			}
			if exists {
				owner = a.UserID
				if err := setUser(ctx, tx, a.UserID); err != nil {
					return err
				}
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO mana_ai.decrypt_audit
			(user_id, mission_id, signature_kid, expires_at, outcome, reason, attempted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, owner, mission, kid, expires, string(a.Outcome), reason, at)
		if err != nil {
			return fmt.Errorf("grantpg: write decrypt audit row: %w", err)
		}
		return nil
	})
}

// Row is one row of mana_ai.decrypt_audit. Optional columns that are NULL
// read as zero values.
type Row struct {
	ID           int64
	UserID       uuid.UUID
	MissionID    string
	SignatureKID string
	ExpiresAt    time.Time
	Outcome      grant.Outcome
	Reason       grant.Reason
	AttemptedAt  time.Time
}

// List returns userID's rows, newest first, at most limit (1 to 1000;
// out-of-range values mean 100), through row-level security.
func (s *Store) List(ctx context.Context, userID uuid.UUID, limit int) ([]Row, error) {
	if userID == uuid.Nil {
		return nil, errors.New("grantpg: List: nil user id")
	}
	if limit < 1 || limit > 1000 {
		limit = 100
	}
	var out []Row
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := setUser(ctx, tx, userID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, user_id, coalesce(mission_id, ''), coalesce(signature_kid, ''),
			expires_at, outcome, coalesce(reason, ''), attempted_at
			FROM mana_ai.decrypt_audit WHERE user_id = $1 ORDER BY attempted_at DESC, id DESC LIMIT $2`, userID, limit)
		if err != nil {
			return fmt.Errorf("grantpg: list decrypt audit: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Row, error) {
			var row Row
			var outcome, reason string
			var expires *time.Time
			err := r.Scan(&row.ID, &row.UserID, &row.MissionID, &row.SignatureKID, &expires, &outcome, &reason, &row.AttemptedAt)
			row.Outcome, row.Reason = grant.Outcome(outcome), grant.Reason(reason)
			if expires != nil {
				row.ExpiresAt = *expires
			}
			return row, err
		})
		if err != nil {
			return fmt.Errorf("grantpg: read decrypt audit: %w", err)
		}
		return nil
	})
	return out, err
}

// setUser points the row-level security of tx at userID for the rest of
// the transaction.
func setUser(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	if _, err := tx.Exec(ctx, "SELECT set_config('"+UserSetting+"', $1, true)", userID.String()); err != nil {
		return fmt.Errorf("grantpg: set %s: %w", UserSetting, err)
	}
	return nil
}

// inTx runs fn in a transaction: fn's error rolls back, else it commits. A
// failed rollback is joined to the error that caused it.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) (err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("grantpg: begin: %w", err)
	}
	defer func() {
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("grantpg: rollback: %w", rbErr))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("grantpg: commit: %w", err)
	}
	return nil
}
