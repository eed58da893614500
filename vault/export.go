package vault

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/gdpr"
)

var _ gdpr.Exporter = (*Service)(nil)

// ExportData writes auth.encryption_vaults and auth.encryption_vault_audit
// of the subject (gdpr.Exporter). The vault row is its metadata only —
// mode, KEK id, format versions, dates, and whether a server wrap and a
// recovery wrap exist — never the wrapped keys, their IVs or the key check
// value. tx must have app.current_user_id set to the subject (gdpr.Service
// does), or row-level security shows no row.
func (s *Service) ExportData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject, w *gdpr.Writer) error {
	if err := w.Query(ctx, tx, "auth.encryption_vaults", `SELECT user_id, kek_id, format_version,
		wrapped_mk IS NOT NULL AS has_server_wrap, recovery_wrapped_mk IS NOT NULL AS has_recovery_wrap,
		recovery_format_version, recovery_set_at, zero_knowledge, created_at, rotated_at
		FROM auth.encryption_vaults WHERE user_id = $1`, subj.UserID); err != nil {
		return err
	}
	return w.Query(ctx, tx, "auth.encryption_vault_audit", `SELECT id, action, ip_address, user_agent, http_status, context, created_at
		FROM auth.encryption_vault_audit WHERE user_id = $1 ORDER BY created_at, id`, subj.UserID)
}

// EraseData does nothing: the vault and its audit rows go with the account
// row (ON DELETE CASCADE, which row-level security does not stop) in the
// same transaction; the runtime role cannot delete them otherwise
// (gdpr.Exporter).
func (s *Service) EraseData(context.Context, pgx.Tx, gdpr.Subject) error { return nil }
