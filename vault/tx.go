package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/autherr"
)

// ErrNoUser reports an empty (nil) user id: refused before any SQL runs.
var ErrNoUser = autherr.Wrap(autherr.Unauthorized, errors.New("vault: no user id"), "")

// Beginner starts transactions: a *pgxpool.Pool, a *pgx.Conn.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// UserSetting is the transaction-local setting the row-level security
// policies read the current user from.
const UserSetting = "app.current_user_id"

// RunAsUser runs fn in a transaction whose first statement is
// set_config('app.current_user_id', userID, true), so the row-level
// security policies show fn only userID's rows; the setting ends with the
// transaction, so a pooled connection never carries it into another
// request. fn's error rolls back; otherwise RunAsUser commits. A nil userID
// returns ErrNoUser before any SQL.
func RunAsUser(ctx context.Context, db Beginner, userID uuid.UUID, fn func(pgx.Tx) error) (err error) {
	if userID == uuid.Nil {
		return ErrNoUser
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("vault: begin: %w", err)
	}
	defer func() { err = rollback(ctx, tx, err) }()
	if err := setUser(ctx, tx, userID); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("vault: commit: %w", err)
	}
	return nil
}

// setUser points the row-level security of tx at userID (until the
// transaction ends or the next setUser).
func setUser(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	if userID == uuid.Nil {
		return ErrNoUser
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('"+UserSetting+"', $1, true)", userID.String()); err != nil {
		return fmt.Errorf("vault: set %s: %w", UserSetting, err)
	}
	return nil
}

// rollback ends a transaction that was not committed (a no-op after
// Commit). A failed rollback (pgx then closes the connection) is joined to
// the error that made us roll back, so neither is lost.
func rollback(ctx context.Context, tx pgx.Tx, err error) error {
	if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
		return errors.Join(err, fmt.Errorf("vault: rollback: %w", rbErr))
	}
	return err
}
