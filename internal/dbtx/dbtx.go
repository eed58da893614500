// Package dbtx runs a function in one PostgreSQL transaction: begin, the
// function, commit; rolled back on any error or panic. It is how every
// store method of the module's packages is one transaction.
package dbtx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
)

// Beginner is what Run needs: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx
// (which gives a savepoint).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Run calls fn inside a transaction of db and commits when fn returns nil.
// Errors are wrapped as "<what>: <err>"; what names the operation
// ("manaauth: register"). A rollback that fails after fn's error is logged
// at warn on logger (the connection is closed by pgx then), never dropped.
func Run(ctx context.Context, db Beginner, logger *slog.Logger, what string, fn func(pgx.Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() {
		if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			logger.Warn("rollback failed", "op", what, "err", err)
		}
	}()
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}
