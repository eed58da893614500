package manaauth

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/gdpr"
)

var (
	_ gdpr.Exporter   = (*Service)(nil)
	_ gdpr.UserReader = (*Service)(nil)
)

// ExportUser returns the account's user object for an export
// (gdpr.UserReader).
//
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *Service) ExportUser(ctx context.Context, tx pgx.Tx, userID uuid.UUID) (any, error) {
	a, err := findByID(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	return a.User, nil
}

// ExportData writes auth.users (has_password instead of the hash),
// auth.sessions (without the cookie hash), auth.refresh_tokens of those
// sessions and auth.one_time_tokens (without token hashes): the metadata of
// every session, refresh and mailed link, never a hash (gdpr.Exporter).
func (s *Service) ExportData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject, w *gdpr.Writer) error {
	id := subj.UserID
	if err := w.Query(ctx, tx, "auth.users", `SELECT id, email, name, image, password_hash IS NOT NULL AS has_password,
		email_verified_at, created_at, updated_at, disabled_at FROM auth.users WHERE id = $1`, id); err != nil {
		return err
	}
	if err := w.Query(ctx, tx, "auth.sessions", `SELECT id, method, ip_address, user_agent, created_at, last_used_at, expires_at,
		revoked_at, revoke_reason FROM auth.sessions WHERE user_id = $1 ORDER BY created_at, id`, id); err != nil {
		return err
	}
	if err := w.Query(ctx, tx, "auth.refresh_tokens", `SELECT t.id, t.session_id, t.parent_id, t.created_at, t.expires_at, t.spent_at
		FROM auth.refresh_tokens t JOIN auth.sessions s ON s.id = t.session_id
		WHERE s.user_id = $1 ORDER BY t.created_at, t.id`, id); err != nil {
		return err
	}
	return w.Query(ctx, tx, "auth.one_time_tokens", `SELECT id, purpose, new_email, created_at, expires_at, used_at, voided_at
		FROM auth.one_time_tokens WHERE user_id = $1 ORDER BY created_at, id`, id)
}

// EraseData does nothing: the user row that DeleteAccount deletes takes
// sessions, refresh tokens and one-time tokens with it (ON DELETE CASCADE)
// in the same transaction (gdpr.Exporter).
func (s *Service) EraseData(context.Context, pgx.Tx, gdpr.Subject) error { return nil }
