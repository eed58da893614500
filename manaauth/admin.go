package manaauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
)

// The operator's side of accounts: what the reference server's `users`
// commands call. None of it is mounted over HTTP.

// UserInfo is what an operator sees of an account.
type UserInfo struct {
	User
	DisabledAt     *time.Time `json:"disabledAt"`
	Locked         bool       `json:"locked"`
	LockedSeconds  int        `json:"lockedSeconds,omitempty"`
	ActiveSessions int        `json:"activeSessions"`
	LastLoginAt    *time.Time `json:"lastLoginAt"`
}

// Users lists accounts whose email contains query (all when empty), by
// email, at most limit (1..1000; 100 when 0).
//
// Errors: VALIDATION_FAILED, SERVICE_UNAVAILABLE.
func (s *Service) Users(ctx context.Context, query string, limit int) ([]UserInfo, error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, invalidField("limit", "from 1 to 1000")
	}
	// The pattern's own wildcards are escaped: -q 'a_b' finds "a_b", not "axb".
	pattern := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(strings.TrimSpace(query))) + "%"
	rows, err := s.cfg.Pool.Query(ctx, `SELECT `+userInfoColumns+` FROM auth.users u
		WHERE u.email LIKE $1 ORDER BY u.email LIMIT $3`, pattern, s.now(), limit)
	if err != nil {
		return nil, fmt.Errorf("manaauth: list users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (UserInfo, error) { return s.scanUserInfo(row) })
	if err != nil {
		return nil, fmt.Errorf("manaauth: list users: %w", err)
	}
	return out, nil
}

// UserByEmail is one account, found by its address.
//
// Errors: VALIDATION_FAILED, NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *Service) UserByEmail(ctx context.Context, email string) (UserInfo, error) {
	email, err := CanonicalEmail("email", email)
	if err != nil {
		return UserInfo{}, err
	}
	u, err := s.scanUserInfo(s.cfg.Pool.QueryRow(ctx, `SELECT `+userInfoColumns+` FROM auth.users u WHERE u.email = $1`,
		email, s.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return UserInfo{}, autherr.New(autherr.NotFound, "no account with this email")
	}
	if err != nil {
		return UserInfo{}, fmt.Errorf("manaauth: find user: %w", err)
	}
	return u, nil
}

// userInfoColumns reads an account with its lock, live sessions and last
// login; $2 is now.
const userInfoColumns = `u.id, u.email, u.name, u.image, u.email_verified_at IS NOT NULL, u.created_at, u.disabled_at,
	(SELECT locked_until FROM auth.lockouts l WHERE l.email = u.email AND l.locked_until > $2),
	(SELECT count(*) FROM auth.sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > $2),
	(SELECT max(created_at) FROM auth.sessions s WHERE s.user_id = u.id)`

func (s *Service) scanUserInfo(row pgx.Row) (UserInfo, error) {
	var u UserInfo
	var lockedUntil *time.Time
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Image, &u.EmailVerified, &u.CreatedAt, &u.DisabledAt,
		&lockedUntil, &u.ActiveSessions, &u.LastLoginAt)
	if err != nil {
		return u, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	if lockedUntil != nil {
		u.Locked = true
		u.LockedSeconds = max(1, int(lockedUntil.Sub(s.now()).Seconds()+0.999))
	}
	return u, nil
}

// Unlock lifts the lockout of an address (LOCKOUT_CLEARED is recorded when
// there was one) and reports whether it was locked.
//
// Errors: VALIDATION_FAILED, SERVICE_UNAVAILABLE.
func (s *Service) Unlock(ctx context.Context, email string) (wasLocked bool, err error) {
	email, err = CanonicalEmail("email", email)
	if err != nil {
		return false, err
	}
	if wasLocked, _, err = s.cfg.Gate.Status(ctx, email); err != nil {
		return false, err
	}
	var userID uuid.UUID
	if a, found, err := findByEmail(ctx, s.cfg.Pool, email); err != nil {
		return false, err
	} else if found {
		userID = a.ID
	}
	return wasLocked, s.cfg.Gate.Clear(ctx, email, userID)
}

// Disable disables an account: it can no longer sign in by any credential
// (ACCOUNT_DISABLED), its refresh tokens stop working, and every session
// is revoked in the same transaction. It reports whether the account was
// enabled before and how many sessions it revoked.
//
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *Service) Disable(ctx context.Context, userID uuid.UUID, reason string) (changed bool, revoked int, err error) {
	now := s.now().UTC()
	err = s.inTx(ctx, "disable account", func(tx pgx.Tx) error {
		if changed, err = setDisabled(ctx, tx, userID, &now); err != nil {
			return err
		}
		if revoked, err = revokeSessions(ctx, tx, userID, uuid.Nil, "account_disabled", now); err != nil {
			return err
		}
		if !changed {
			return nil
		}
		md := map[string]any{"revokedSessions": revoked}
		if reason != "" {
			md["reason"] = reason
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.AccountDisabled, UserID: userID, Metadata: md})
	})
	return changed, revoked, err
}

// Enable lets a disabled account sign in again (its old sessions stay
// revoked) and reports whether it was disabled.
//
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *Service) Enable(ctx context.Context, userID uuid.UUID) (changed bool, err error) {
	err = s.inTx(ctx, "enable account", func(tx pgx.Tx) error {
		if changed, err = setDisabled(ctx, tx, userID, nil); err != nil || !changed {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.AccountEnabled, UserID: userID})
	})
	return changed, err
}

// setDisabled sets or clears disabled_at and reports whether it changed.
func setDisabled(ctx context.Context, tx pgx.Tx, userID uuid.UUID, at *time.Time) (bool, error) {
	var changed bool
	err := tx.QueryRow(ctx, `WITH target AS (SELECT id, disabled_at FROM auth.users WHERE id = $1 FOR UPDATE),
		upd AS (UPDATE auth.users SET disabled_at = $2 WHERE id = (SELECT id FROM target)
		          AND (disabled_at IS NULL) <> ($2::timestamptz IS NULL) RETURNING id)
		SELECT EXISTS (SELECT 1 FROM upd) FROM target`, userID, at).Scan(&changed)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, autherr.New(autherr.NotFound, "user not found")
	}
	if err != nil {
		return false, fmt.Errorf("manaauth: set disabled: %w", err)
	}
	return changed, nil
}

// RevokeAllSessions revokes every live session of the user (an operator's
// "sign out everywhere") and returns how many.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) RevokeAllSessions(ctx context.Context, userID uuid.UUID) (int, error) {
	var n int
	err := s.inTx(ctx, "revoke all sessions", func(tx pgx.Tx) error {
		var err error
		if n, err = revokeSessions(ctx, tx, userID, uuid.Nil, "operator", s.now().UTC()); err != nil || n == 0 {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.SessionRevoked, UserID: userID,
			Metadata: map[string]any{"count": n, "by": "operator"}})
	})
	return n, err
}
