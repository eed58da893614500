package mfa

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/internal/dbtx"
	"github.com/mana-how/mana-auth/vault"
)

// The TOTP secrets are sealed under the vault's KEK ring, so they follow
// its rotation: a host that moves to a new KEK runs Rewrap beside the
// vault's own, and refuses to report ready while UnknownKEKs finds secrets
// under a KEK the ring lost (their owners could not sign in).

// UnknownKEKs counts the stored TOTP secrets sealed under a KEK id keys do
// not hold, by id. It reads ids and counts only, through
// auth.mfa_factor_kek_ids() (the runtime role cannot see other users'
// rows). Empty when every secret can be opened, and when keys cannot tell
// (it does not implement vault.KEKHolder).
//
// Errors: SERVICE_UNAVAILABLE.
func UnknownKEKs(ctx context.Context, pool *pgxpool.Pool, keys vault.KeyWrapper) (map[string]int64, error) {
	unknown, err := vault.CountUnknownKEKs(ctx, pool, keys, `SELECT kek_id, factors FROM auth.mfa_factor_kek_ids()`)
	if err != nil {
		return nil, fmt.Errorf("mfa: KEK inventory: %w", err)
	}
	return unknown, nil
}

// UnknownKEKsError describes what UnknownKEKs found, for a log line or a
// readiness answer; nil when it found nothing.
func UnknownKEKsError(unknown map[string]int64, ring []string) error {
	if len(unknown) == 0 {
		return nil
	}
	msg := "TOTP secrets are sealed under KEK ids the key ring does not hold:"
	for _, id := range slices.Sorted(maps.Keys(unknown)) {
		msg += fmt.Sprintf(" %q (%d factors)", id, unknown[id])
	}
	return fmt.Errorf("%s; the ring holds %q — add the old KEK to %s, then run rewrap", msg, ring, vault.EnvKEKs)
}

// Rewrap seals every stored TOTP secret that is not under the active KEK
// of keys anew under it, and returns how many it moved. It runs as the
// runtime role through row-level security: it asks
// auth.mfa_factor_users_off_kek() for batchSize user ids at a time and
// moves each user's secret in a transaction of its own, as that user.
// The secret exists in clear only in this process's memory, between open
// and seal, and is zeroed right after. It can be interrupted and run
// again.
//
// A secret that does not open (its KEK missing from the ring, or damaged)
// is left as it is and logged with its user and KEK id; the run goes on
// and then returns an error counting them. A database error stops it.
func Rewrap(ctx context.Context, pool *pgxpool.Pool, keys vault.KeyWrapper, logger *slog.Logger, batchSize int) (moved int, err error) {
	if batchSize < 1 {
		return 0, fmt.Errorf("mfa: rewrap: batch size %d, want at least 1", batchSize)
	}
	if logger == nil {
		logger = slog.Default()
	}
	active := keys.ActiveKEKID()
	var (
		after  uuid.UUID
		failed int
	)
	for {
		rows, err := pool.Query(ctx, `SELECT user_id FROM auth.mfa_factor_users_off_kek($1, $2, $3)`, active, after, batchSize)
		if err != nil {
			return moved, fmt.Errorf("mfa: rewrap: list users: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return moved, fmt.Errorf("mfa: rewrap: list users: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		for _, userID := range ids {
			ok, err := rewrapUser(ctx, pool, keys, logger, userID, active)
			if err != nil {
				return moved, err
			}
			if ok {
				moved++
			} else {
				failed++
			}
		}
		after = ids[len(ids)-1]
		logger.LogAttrs(ctx, slog.LevelInfo, "mfa: rewrap: batch done", slog.Int("moved", moved),
			slog.Int("left_unopened", failed), slog.String("active_kek", active))
	}
	if failed > 0 {
		return moved, fmt.Errorf("mfa: rewrap: %d TOTP secrets could not be opened and stay on their old KEK", failed)
	}
	return moved, nil
}

// rewrapUser moves one user's secret; false when it does not open.
func rewrapUser(ctx context.Context, pool *pgxpool.Pool, keys vault.KeyWrapper, logger *slog.Logger, userID uuid.UUID, active string) (bool, error) {
	opened := true
	err := dbtx.Run(ctx, pool, logger, "mfa: rewrap", func(tx pgx.Tx) error {
		if err := asUser(ctx, tx, userID); err != nil {
			return err
		}
		f, err := loadFactor(ctx, tx, userID, true)
		if err != nil || f == nil || f.secret.KEKID == active {
			return err // gone or moved meanwhile: nothing to do
		}
		secret, err := open(ctx, keys, userID, f.id, f.secret)
		if err != nil {
			opened = false
			logger.LogAttrs(ctx, slog.LevelError, "mfa: rewrap: TOTP secret could not be opened; left on its KEK",
				slog.String("user_id", userID.String()), slog.String("factor_id", f.id.String()),
				slog.String("kek_id", f.secret.KEKID))
			return nil
		}
		defer clear(secret)
		sl, err := seal(ctx, keys, userID, f.id, secret)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE auth.mfa_factors SET secret_sealed = $2, secret_iv = $3, kek_id = $4, format_version = $5
			WHERE id = $1`, f.id, sl.Box, sl.IV, sl.KEKID, sl.Version)
		return err
	})
	if err != nil {
		return false, err
	}
	return opened, nil
}
