package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Rewrap moves every server-wrapped master key that is not under the
// active KEK to it, and returns how many it moved.
//
// It runs as the runtime role, through row-level security like every other
// query: it walks auth.users in id order, batchSize users per transaction,
// and inside that transaction points app.current_user_id at each user in
// turn before touching that user's row (locked FOR UPDATE). Each batch
// commits on its own, so an interrupted run keeps what it moved and a
// second run moves only the rest (it is resumable and idempotent). The
// plaintext key exists only in this process's memory, between unwrap and
// wrap, and is zeroed right after. Each move writes an audit row (action
// rewrap, from and to KEK ids); each batch logs a progress line at info.
//
// A row that does not unwrap (its KEK missing from the ring, or damaged) is
// left as it is and logged with its user and KEK id; the run goes on and
// then returns an error wrapping ErrUnwrap that counts them. Any database
// error stops the run (batches already committed stay).
func (s *Service) Rewrap(ctx context.Context, batchSize int) (moved int, err error) {
	if batchSize < 1 {
		return 0, fmt.Errorf("vault: rewrap: batch size %d, want at least 1", batchSize)
	}
	active := s.keys.ActiveKEKID()
	var (
		after     uuid.UUID
		scanned   int
		failed    int
		firstFail string
	)
	for {
		ids, err := s.userPage(ctx, after, batchSize)
		if err != nil {
			return moved, err
		}
		if len(ids) == 0 {
			break
		}
		n, fails, err := s.rewrapBatch(ctx, ids, active)
		if err != nil {
			return moved, err
		}
		moved += n
		if len(fails) > 0 && failed == 0 {
			firstFail = fails[0]
		}
		failed += len(fails)
		after = ids[len(ids)-1]
		scanned += len(ids)
		s.logger.LogAttrs(ctx, slog.LevelInfo, "vault: rewrap: batch done",
			slog.Int("users_scanned", scanned), slog.Int("moved", moved), slog.Int("batch_moved", n),
			slog.Int("left_unopened", failed), slog.String("active_kek", active))
	}
	if failed > 0 {
		return moved, fmt.Errorf("vault: rewrap: %d vaults could not be unwrapped and stay on their old KEK (first: %s): %w",
			failed, firstFail, ErrUnwrap)
	}
	return moved, nil
}

func (s *Service) userPage(ctx context.Context, after uuid.UUID, limit int) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM auth.users WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("vault: rewrap: list users: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("vault: rewrap: list users: %w", err)
	}
	return ids, nil
}

// rewrapBatch moves the rows of ids in one transaction. fails describes the
// rows left alone because they did not unwrap.
func (s *Service) rewrapBatch(ctx context.Context, ids []uuid.UUID, active string) (moved int, fails []string, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("vault: rewrap: begin: %w", err)
	}
	defer func() { err = rollback(ctx, tx, err) }()
	for _, id := range ids {
		if err := setUser(ctx, tx, id); err != nil {
			return 0, nil, err
		}
		r, err := load(ctx, tx, id, true)
		if err != nil {
			return 0, nil, err
		}
		if r == nil || !r.hasServerWrap || r.wrapped.KEKID == active {
			continue
		}
		mk, err := Unwrap(ctx, s.keys, id, r.wrapped)
		if err != nil {
			s.unwrapFails.Inc()
			s.logger.LogAttrs(ctx, slog.LevelError, "vault: rewrap: master key could not be unwrapped; row left on its KEK",
				slog.String("user_id", id.String()), slog.String("kek_id", r.wrapped.KEKID))
			fails = append(fails, fmt.Sprintf("user %s, kek %q", id, r.wrapped.KEKID))
			continue
		}
		w, err := Wrap(ctx, s.keys, id, mk)
		clear(mk)
		if err != nil {
			return 0, nil, fmt.Errorf("vault: rewrap: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE auth.encryption_vaults SET wrapped_mk = $2, wrap_iv = $3, kek_id = $4,
			format_version = $5 WHERE user_id = $1`, id, w.Ciphertext, w.IV, w.KEKID, w.FormatVersion)
		if err != nil {
			return 0, nil, fmt.Errorf("vault: rewrap: update %s: %w", id, err)
		}
		if tag.RowsAffected() != 1 {
			return 0, nil, errors.New("vault: rewrap: update of user " + id.String() + " changed no row")
		}
		if err := s.insertAudit(ctx, tx, id, audit{action: ActionRewrap,
			context: map[string]any{"fromKekId": r.wrapped.KEKID, "toKekId": w.KEKID}}); err != nil {
			return 0, nil, err
		}
		moved++
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, nil, fmt.Errorf("vault: rewrap: commit: %w", err)
	}
	return moved, fails, nil
}
