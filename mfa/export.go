package mfa

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/gdpr"
)

var _ gdpr.Exporter = (*Service)(nil)

// ExportData writes the subject's second factors, recovery codes and
// sign-in challenges (gdpr.Exporter): their state and dates, never the
// sealed secret, its IV, a code hash or a token hash. The export's
// transaction sets app.current_user_id, so row-level security shows the
// subject's rows.
func (s *Service) ExportData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject, w *gdpr.Writer) error {
	if err := w.Query(ctx, tx, "auth.mfa_factors", `SELECT id, kind, status, kek_id, format_version, created_at,
		confirmed_at, last_used_at FROM auth.mfa_factors WHERE user_id = $1 ORDER BY created_at, id`, subj.UserID); err != nil {
		return err
	}
	if err := w.Query(ctx, tx, "auth.mfa_recovery_codes", `SELECT id, factor_id, created_at, used_at
		FROM auth.mfa_recovery_codes WHERE user_id = $1 ORDER BY id`, subj.UserID); err != nil {
		return err
	}
	return w.Query(ctx, tx, "auth.mfa_challenges", `SELECT id, method, created_at, expires_at, used_at
		FROM auth.mfa_challenges WHERE user_id = $1 ORDER BY created_at, id`, subj.UserID)
}

// EraseData has nothing to do: every row of the subject references
// auth.users with ON DELETE CASCADE and goes with the account row in the
// same transaction (gdpr.Exporter).
func (s *Service) EraseData(context.Context, pgx.Tx, gdpr.Subject) error { return nil }
