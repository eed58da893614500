package grantpg

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/gdpr"
)

var _ gdpr.Exporter = (*Store)(nil)

// ExportData writes the subject's rows of mana_ai.decrypt_audit, the AI
// service's attempts to unwrap its mission grants (never key material)
// (gdpr.Exporter). tx must have app.current_user_id set to the subject
// (gdpr.Service does), or row-level security shows no row.
func (s *Store) ExportData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject, w *gdpr.Writer) error {
	return w.Query(ctx, tx, "mana_ai.decrypt_audit", `SELECT id, mission_id, signature_kid, expires_at, outcome, reason, attempted_at
		FROM mana_ai.decrypt_audit WHERE user_id = $1 ORDER BY attempted_at, id`, subj.UserID)
}

// EraseData does nothing: the rows go with the account row (ON DELETE
// CASCADE) in the same transaction (gdpr.Exporter).
func (s *Store) EraseData(context.Context, pgx.Tx, gdpr.Subject) error { return nil }
