package passkey

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/gdpr"
)

// Data is the passkey package's part of the GDPR export and erasure
// (gdpr.Exporter). It needs no Service, so a host that runs without
// passkeys configured still exports the rows an earlier configuration
// left.
type Data struct{}

var (
	_ gdpr.Exporter = Data{}
	_ gdpr.Exporter = (*Service)(nil)
)

// ExportData writes the subject's passkeys — name, authenticator model,
// transports, flags, counter, dates, and the credential id (standard
// base64), never the public key — and the challenges of ceremonies bound
// to the account (registration, and sign-in options asked for its
// address): ceremony and dates, not the session data.
func (Data) ExportData(ctx context.Context, tx pgx.Tx, s gdpr.Subject, w *gdpr.Writer) error {
	if err := w.Query(ctx, tx, "auth.passkeys", `SELECT id, name, aaguid, transports,
		translate(encode(credential_id, 'base64'), E'\n', '') AS credential_id,
		backup_eligible, backup_state, sign_count, created_at, last_used_at
		FROM auth.passkeys WHERE user_id = $1 ORDER BY created_at, id`, s.UserID); err != nil {
		return err
	}
	return w.Query(ctx, tx, "auth.passkey_challenges", `SELECT id, ceremony, created_at, expires_at, used_at
		FROM auth.passkey_challenges WHERE user_id = $1 ORDER BY created_at, id`, s.UserID)
}

// EraseData has nothing to do: the subject's passkeys and challenges
// reference auth.users with ON DELETE CASCADE and go with the account
// row; challenges of usernameless sign-ins name nobody.
func (Data) EraseData(context.Context, pgx.Tx, gdpr.Subject) error { return nil }

// ExportData is Data's (gdpr.Exporter).
func (s *Service) ExportData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject, w *gdpr.Writer) error {
	return Data{}.ExportData(ctx, tx, subj, w)
}

// EraseData is Data's (gdpr.Exporter).
func (s *Service) EraseData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject) error {
	return Data{}.EraseData(ctx, tx, subj)
}
