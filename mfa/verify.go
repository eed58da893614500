package mfa

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/secret"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
)

// challenge is a row of auth.mfa_challenges with its account's address.
type challenge struct {
	userID uuid.UUID
	email  string
}

// findChallenge resolves an mfaToken to a challenge that may still be
// completed.
func (s *Service) findChallenge(ctx context.Context, tokenHash []byte) (challenge, error) {
	var (
		c       challenge
		expires time.Time
		used    *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT c.user_id, u.email, c.expires_at, c.used_at
		FROM auth.mfa_challenges c JOIN auth.users u ON u.id = c.user_id WHERE c.token_hash = $1`, tokenHash).
		Scan(&c.userID, &c.email, &expires, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return c, errTokenInvalid
	case err != nil:
		return c, fmt.Errorf("mfa: find challenge: %w", err)
	case used != nil:
		return c, errTokenInvalid
	case !expires.After(s.now()):
		return c, autherr.New(autherr.TokenExpired, "the mfa token has expired; sign in again")
	}
	return c, nil
}

// Verify completes a sign-in that answered mfaRequired: mfaToken is the
// token of that answer and p a TOTP code or a recovery code of the
// account's active factor. It passes the lockout gate with the account's
// address (method mfa), so wrong codes count toward the same lock as wrong
// passwords and a locked account is refused even with the right code.
// On success the session starts (method mfa) and, in the same
// transaction, the mfaToken is spent, the code's time step recorded (a
// code is accepted once) or the recovery code spent, and the gate's
// success recorded; a recovery code also writes MFA_RECOVERY_CODE_USED
// and mails the account a notice.
//
// Errors: VALIDATION_FAILED (no code, both, or one of the wrong shape),
// TOKEN_INVALID (unknown or spent mfaToken, or no active factor any
// more), TOKEN_EXPIRED, MFA_INVALID_CODE (wrong or replayed code; counts
// toward the lock), ACCOUNT_LOCKED, ACCOUNT_DISABLED, INTERNAL (a stored
// secret that does not open), SERVICE_UNAVAILABLE (never counted).
func (s *Service) Verify(ctx context.Context, mfaToken string, p Proof, c manaauth.Client) (*manaauth.TokenPair, error) {
	code, recovery, err := p.parse()
	if err != nil {
		return nil, err
	}
	if !secret.Shaped(mfaToken) {
		return nil, errTokenInvalid
	}
	tokenHash := secret.Hash(mfaToken)
	ch, err := s.findChallenge(ctx, tokenHash)
	if err != nil {
		return nil, err
	}
	ticket, err := s.gate.Begin(ctx, lockout.Attempt{Email: ch.email, Method: lockout.MFA, IP: c.IP, UserAgent: c.UserAgent})
	if err != nil {
		return nil, err
	}
	var step int64
	if !recovery {
		if step, err = s.totpStep(ctx, ch.userID, code); err != nil {
			return nil, finish(ctx, ticket, ch.userID, err)
		}
	}
	var left int
	pair, err := s.accounts.StartSession(ctx, manaauth.SignIn{UserID: ch.userID, Method: lockout.MFA, Client: c, Ticket: ticket,
		InTx: func(ctx context.Context, tx pgx.Tx) error {
			if err := asUser(ctx, tx, ch.userID); err != nil {
				return err
			}
			now := s.now().UTC()
			tag, err := tx.Exec(ctx, `UPDATE auth.mfa_challenges SET used_at = $2
				WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`, tokenHash, now)
			if err != nil {
				return fmt.Errorf("mfa: spend challenge: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return errTokenInvalid // spent by a concurrent verify, or expired meanwhile
			}
			if recovery {
				left, err = s.spendRecoveryCode(ctx, tx, ch.userID, code, c)
				return err
			}
			return spendStep(ctx, tx, ch.userID, step, now)
		}})
	if err != nil {
		return nil, err // StartSession recorded the outcome at the gate
	}
	if recovery {
		s.notify(ctx, "mfa_recovery_code_used", mail.MFARecoveryCodeUsed(ch.email, left))
	}
	return pair, nil
}

// totpStep reads the user's active factor and returns the step code
// belongs to. No active factor any more (removed since the challenge) is
// TOKEN_INVALID: the sign-in must start again.
func (s *Service) totpStep(ctx context.Context, userID uuid.UUID, code string) (int64, error) {
	var f *factor
	err := s.inTx(ctx, userID, "read factor", func(tx pgx.Tx) error {
		var err error
		f, err = loadFactor(ctx, tx, userID, false)
		return err
	})
	if err != nil {
		return 0, err
	}
	if f == nil || !f.active {
		return 0, autherr.New(autherr.TokenInvalid, "two-step sign-in is no longer set up; sign in again")
	}
	return s.checkCode(ctx, userID, f, code)
}

// spendStep records step as the last accepted of the user's active factor
// — only when it is later than the last one, in one conditional UPDATE, so
// of two sign-ins with one code exactly one succeeds.
func spendStep(ctx context.Context, tx pgx.Tx, userID uuid.UUID, step int64, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE auth.mfa_factors SET last_step = $2, last_used_at = $3
		WHERE user_id = $1 AND kind = 'totp' AND status = 'active' AND (last_step IS NULL OR last_step < $2)`,
		userID, step, now)
	if err != nil {
		return fmt.Errorf("mfa: record time step: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errInvalidCode // replayed (a concurrent use won) or the factor is gone
	}
	return nil
}

// spendRecoveryCode spends one unused recovery code of the user's active
// factor in one conditional UPDATE, writes MFA_RECOVERY_CODE_USED and
// returns how many are left. A wrong or spent code is MFA_INVALID_CODE.
func (s *Service) spendRecoveryCode(ctx context.Context, tx pgx.Tx, userID uuid.UUID, code string, c manaauth.Client) (int, error) {
	now := s.now().UTC()
	var factorID uuid.UUID
	err := tx.QueryRow(ctx, `UPDATE auth.mfa_recovery_codes r SET used_at = $3
		FROM auth.mfa_factors f
		WHERE r.user_id = $1 AND r.code_hash = $2 AND r.used_at IS NULL AND f.id = r.factor_id AND f.status = 'active'
		RETURNING r.factor_id`, userID, recoveryHash(userID, code), now).Scan(&factorID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errInvalidCode
	}
	if err != nil {
		return 0, fmt.Errorf("mfa: spend recovery code: %w", err)
	}
	var left int
	if err := tx.QueryRow(ctx, `WITH used AS (UPDATE auth.mfa_factors SET last_used_at = $2 WHERE id = $1)
		SELECT count(*) FROM auth.mfa_recovery_codes WHERE factor_id = $1 AND used_at IS NULL`, factorID, now).Scan(&left); err != nil {
		return 0, fmt.Errorf("mfa: count recovery codes: %w", err)
	}
	err = s.events.Insert(ctx, tx, lockout.Event{Type: lockout.MFARecoveryCodeUsed, UserID: userID, IP: c.IP,
		UserAgent: c.UserAgent, Metadata: map[string]any{"remaining": left}})
	return left, err
}
