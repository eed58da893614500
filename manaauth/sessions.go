package manaauth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
)

// Session is one entry of GET /sessions: a live session of the caller.
type Session struct {
	ID         uuid.UUID `json:"id"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt"` // the last refresh; not touched per request
	ExpiresAt  time.Time `json:"expiresAt"`
	IP         *string   `json:"ip"`        // where the session started
	UserAgent  *string   `json:"userAgent"` // what started it
	Method     string    `json:"method"`    // password, passkey or mfa
	Current    bool      `json:"current"`   // the session of the token that asked
}

// Sessions lists the user's live sessions (not revoked, not expired),
// newest first; current marks the caller's own.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) Sessions(ctx context.Context, userID, current uuid.UUID) ([]Session, error) {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT id, created_at, last_used_at, expires_at, ip_address, user_agent, method
		FROM auth.sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
		ORDER BY created_at DESC, id`, userID, s.now())
	if err != nil {
		return nil, fmt.Errorf("manaauth: list sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Session, error) {
		var ss Session
		var ip *netip.Addr
		if err := row.Scan(&ss.ID, &ss.CreatedAt, &ss.LastUsedAt, &ss.ExpiresAt, &ip, &ss.UserAgent, &ss.Method); err != nil {
			return ss, err
		}
		if ip != nil {
			v := ip.String()
			ss.IP = &v
		}
		ss.CreatedAt, ss.LastUsedAt, ss.ExpiresAt = ss.CreatedAt.UTC(), ss.LastUsedAt.UTC(), ss.ExpiresAt.UTC()
		ss.Current = ss.ID == current
		return ss, nil
	})
	if err != nil {
		return nil, fmt.Errorf("manaauth: list sessions: %w", err)
	}
	return out, nil
}

// RevokeSession revokes one session of the user, and so its refresh
// family; its access tokens are refused by the live-session check within
// its cache time. Revoking a session that is already revoked does nothing.
//
// Errors: NOT_FOUND (no such session of this user), SERVICE_UNAVAILABLE.
func (s *Service) RevokeSession(ctx context.Context, userID, sessionID uuid.UUID, c Client) error {
	now := s.now().UTC()
	return s.inTx(ctx, "revoke session", func(tx pgx.Tx) error {
		var revoked bool
		err := tx.QueryRow(ctx, `WITH target AS (
			  SELECT id, revoked_at FROM auth.sessions WHERE id = $1 AND user_id = $2 FOR UPDATE),
			upd AS (
			  UPDATE auth.sessions SET revoked_at = $3, revoke_reason = 'revoked'
			  WHERE id = (SELECT id FROM target WHERE revoked_at IS NULL) RETURNING id)
			SELECT EXISTS (SELECT 1 FROM upd) FROM target`, sessionID, userID, now).Scan(&revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return autherr.New(autherr.NotFound, "no such session")
		}
		if err != nil || !revoked {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.SessionRevoked, UserID: userID, IP: c.IP,
			UserAgent: c.UserAgent, Metadata: map[string]any{"sessionId": sessionID.String()}})
	})
}

// RevokeOtherSessions revokes every live session of the user but keep
// (the caller's own) and returns how many it revoked.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) RevokeOtherSessions(ctx context.Context, userID, keep uuid.UUID, c Client) (int, error) {
	var n int
	err := s.inTx(ctx, "revoke other sessions", func(tx pgx.Tx) error {
		var err error
		if n, err = revokeSessions(ctx, tx, userID, keep, "revoked", s.now().UTC()); err != nil || n == 0 {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.SessionRevoked, UserID: userID, IP: c.IP,
			UserAgent: c.UserAgent, Metadata: map[string]any{"others": true, "count": n, "kept": keep.String()}})
	})
	return n, err
}

// SessionActive reports whether a session may still be used: not revoked,
// not expired, and its account not disabled. It backs the live-session
// check (token.LiveSessions) of the routes that guard secrets.
//
// Errors: SERVICE_UNAVAILABLE — never "not active" for an outage.
func (s *Service) SessionActive(ctx context.Context, sessionID uuid.UUID) (bool, error) {
	var ok bool
	err := s.cfg.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id
		WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.disabled_at IS NULL)`, sessionID, s.now()).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("manaauth: session check: %w", err)
	}
	return ok, nil
}
