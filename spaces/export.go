package spaces

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/gdpr"
)

var _ gdpr.Exporter = (*Service)(nil)

// ExportData writes auth.spaces (every space the subject belongs to or
// made), auth.space_members (the subject's memberships) and
// auth.space_invitations (those the subject sent, accepted, or that are
// addressed to one of its addresses), never an invitation's token hash
// (gdpr.Exporter).
func (s *Service) ExportData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject, w *gdpr.Writer) error {
	id := subj.UserID
	if err := w.Query(ctx, tx, "auth.spaces", `SELECT s.id, s.name, s.type, s.created_at, s.created_by
		FROM auth.spaces s
		WHERE s.created_by = $1 OR EXISTS (SELECT 1 FROM auth.space_members m WHERE m.space_id = s.id AND m.user_id = $1)
		ORDER BY s.created_at, s.id`, id); err != nil {
		return err
	}
	if err := w.Query(ctx, tx, "auth.space_members", `SELECT space_id, user_id, role, joined_at
		FROM auth.space_members WHERE user_id = $1 ORDER BY joined_at, space_id`, id); err != nil {
		return err
	}
	return w.Query(ctx, tx, "auth.space_invitations", `SELECT id, space_id, email, role, invited_by, created_at, expires_at,
		accepted_at, revoked_at, accepted_by
		FROM auth.space_invitations
		WHERE invited_by = $1 OR accepted_by = $1 OR email = ANY ($2::text[])
		ORDER BY created_at, id`, id, subj.Emails)
}

// EraseData deletes the invitations addressed to the subject's addresses
// that nobody accepted. Memberships go with the account row (and a space
// left without members with them), accepted invitations with their
// acceptor, and the invitations the subject sent lose their inviter
// (invited_by SET NULL): their address is the invitee's, not the
// subject's (gdpr.Exporter).
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) EraseData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject) error {
	if _, err := tx.Exec(ctx, `DELETE FROM auth.space_invitations WHERE email = ANY ($1::text[]) AND accepted_by IS NULL`,
		subj.Emails); err != nil {
		return fmt.Errorf("spaces: erase invitations: %w", err)
	}
	return nil
}
