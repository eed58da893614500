package lockout

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/gdpr"
)

var (
	_ gdpr.Exporter    = (*Service)(nil)
	_ gdpr.AddressBook = (*Service)(nil)
)

// Addresses returns the addresses attributed to userID (gdpr.AddressBook):
// the one it holds now first, then the earlier ones of auth.user_emails
// that no other account holds now, the most recently held first. An address
// another account holds now is that account's, whatever its past.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) Addresses(ctx context.Context, tx pgx.Tx, userID uuid.UUID) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT h.email
		FROM auth.user_emails h
		WHERE h.user_id = $1
		  AND (h.held_until IS NULL OR NOT EXISTS (
		        SELECT 1 FROM auth.user_emails o WHERE o.email = h.email AND o.held_until IS NULL AND o.user_id <> $1))
		GROUP BY h.email
		ORDER BY bool_or(h.held_until IS NULL) DESC, max(coalesce(h.held_until, 'infinity')) DESC, h.email`, userID)
	if err != nil {
		return nil, fmt.Errorf("lockout: addresses: %w", err)
	}
	emails, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("lockout: addresses: %w", err)
	}
	return emails, nil
}

// ExportData writes auth.user_emails, auth.login_attempts, auth.lockouts
// (the counters of the subject's addresses) and auth.security_events (the
// subject's own events) (gdpr.Exporter).
func (s *Service) ExportData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject, w *gdpr.Writer) error {
	if err := w.Query(ctx, tx, "auth.user_emails", `SELECT email, held_from, held_until
		FROM auth.user_emails WHERE user_id = $1 ORDER BY held_from, id`, subj.UserID); err != nil {
		return err
	}
	// auth.login_attempts_of (migration 0002) is the attribution, shared
	// with the erasure.
	if err := w.Query(ctx, tx, "auth.login_attempts", `SELECT id, email, ip_address, user_agent, successful, method, attempted_at
		FROM auth.login_attempts_of($1, $2::text[]) ORDER BY attempted_at, id`, subj.UserID, subj.Emails); err != nil {
		return err
	}
	if err := w.Query(ctx, tx, "auth.lockouts", `SELECT email, failures, locked_until, denied, updated_at
		FROM auth.lockouts WHERE email = ANY ($1::text[]) ORDER BY email`, subj.Emails); err != nil {
		return err
	}
	return w.Query(ctx, tx, "auth.security_events", `SELECT id, event_type, ip_address, user_agent, metadata, created_at
		FROM auth.security_events WHERE user_id = $1 ORDER BY id`, subj.UserID)
}

// EraseData deletes the login attempts and lockout counters attributed to
// the subject and anonymises its security events: they keep their type
// and time and lose user id, IP address, user agent and metadata (which
// may name a session or a mission). It calls auth.erase_sign_in_records,
// which runs as the tables' owner: the runtime role cannot delete an
// attempt or change an event by itself. The address history goes with the
// account row (ON DELETE CASCADE) (gdpr.Exporter).
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) EraseData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject) error {
	if _, err := tx.Exec(ctx, `SELECT auth.erase_sign_in_records($1, $2::text[])`, subj.UserID, subj.Emails); err != nil {
		return fmt.Errorf("lockout: erase: %w", err)
	}
	return nil
}
