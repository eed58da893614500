package apikey

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/gdpr"
)

var _ gdpr.Exporter = (*Service)(nil)

// ExportData writes the subject's rows of auth.api_keys, revoked ones
// included, never the key hash (gdpr.Exporter).
func (s *Service) ExportData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject, w *gdpr.Writer) error {
	return w.Query(ctx, tx, "auth.api_keys", `SELECT id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at
		FROM auth.api_keys WHERE user_id = $1 ORDER BY created_at, id`, subj.UserID)
}

// EraseData forgets the subject's keys in this instance's validation
// cache; the rows go with the account row (ON DELETE CASCADE) in the same
// transaction. Other instances stop accepting them within CacheTTL
// (gdpr.Exporter).
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) EraseData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject) error {
	rows, err := tx.Query(ctx, `SELECT key_hash FROM auth.api_keys WHERE user_id = $1`, subj.UserID)
	if err != nil {
		return fmt.Errorf("apikey: erase: %w", err)
	}
	hashes, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return fmt.Errorf("apikey: erase: %w", err)
	}
	keys := make([][32]byte, 0, len(hashes))
	for _, h := range hashes {
		if len(h) == sha256.Size {
			keys = append(keys, [32]byte(h))
		}
	}
	s.cache.invalidate(keys...)
	return nil
}
