package mfa

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
)

// QRSize is the width and height in pixels of the enrolment QR code.
const QRSize = 256

// Enrollment is the answer of Enroll: what an authenticator app needs,
// shown once. QRPNG encodes as standard base64 in JSON.
type Enrollment struct {
	Secret     string `json:"secret"`     // base32 without padding, for typing in
	OTPAuthURL string `json:"otpauthUrl"` // otpauth://totp/…, what the QR code holds
	QRPNG      []byte `json:"qrPng"`      // PNG of the QR code
}

// Status is the answer of Status.
type Status struct {
	TOTP              bool `json:"totp"` // an active TOTP factor
	RecoveryCodesLeft int  `json:"recoveryCodesLeft"`
}

var errActive = autherr.New(autherr.Conflict, "two-step sign-in is already on; switch it off first")

// Enroll starts setting up a TOTP factor: sessionID, the caller's session,
// must have signed in recently (manaauth.ReauthWithin) and password is
// re-checked through the lockout gate (a wrong one counts toward the
// lock). It draws a new secret, stores it sealed as the user's pending
// factor — replacing a pending one, so only the latest enrolment can be
// confirmed — and returns it for the authenticator app. The factor is
// active only once Confirm saw a code from it.
//
// Errors: REAUTH_REQUIRED, TOKEN_INVALID (the session is gone),
// VALIDATION_FAILED, INVALID_CREDENTIALS, ACCOUNT_LOCKED, CONFLICT (a
// factor is active already), NOT_FOUND (the account is gone),
// SERVICE_UNAVAILABLE.
func (s *Service) Enroll(ctx context.Context, userID, sessionID uuid.UUID, password string, c manaauth.Client) (*Enrollment, error) {
	if err := s.accounts.RequireRecentAuth(ctx, userID, sessionID, 0); err != nil {
		return nil, err
	}
	// Checked before the password is hashed, and again when the pending
	// factor is written.
	st, err := s.Status(ctx, userID)
	if err != nil {
		return nil, err
	}
	if st.TOTP {
		return nil, errActive
	}
	u, err := s.accounts.CheckPassword(ctx, userID, password, c)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, SecretSize)
	if _, err := io.ReadFull(s.rand, raw); err != nil {
		return nil, fmt.Errorf("mfa: random secret: %w", err)
	}
	defer clear(raw)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.issuer, AccountName: u.Email, Secret: raw,
		Period: uint(Period.Seconds()), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("mfa: enrolment key: %w", err)
	}
	img, err := key.Image(QRSize, QRSize)
	if err != nil {
		return nil, fmt.Errorf("mfa: QR code: %w", err)
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return nil, fmt.Errorf("mfa: QR code: %w", err)
	}
	factorID := uuid.New()
	sl, err := seal(ctx, s.keys, userID, factorID, raw)
	if err != nil {
		return nil, err
	}
	err = s.inTx(ctx, userID, "enroll", func(tx pgx.Tx) error {
		var id uuid.UUID
		err := tx.QueryRow(ctx, `INSERT INTO auth.mfa_factors AS f
			  (id, user_id, kind, status, secret_sealed, secret_iv, kek_id, format_version, created_at)
			VALUES ($1, $2, 'totp', 'pending', $3, $4, $5, $6, $7)
			ON CONFLICT (user_id, kind) DO UPDATE SET id = EXCLUDED.id, secret_sealed = EXCLUDED.secret_sealed,
			  secret_iv = EXCLUDED.secret_iv, kek_id = EXCLUDED.kek_id, format_version = EXCLUDED.format_version,
			  created_at = EXCLUDED.created_at, last_step = NULL, last_used_at = NULL
			WHERE f.status = 'pending'
			RETURNING id`, factorID, userID, sl.Box, sl.IV, sl.KEKID, sl.Version, s.now().UTC()).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return errActive // activated by a concurrent confirm
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Enrollment{Secret: key.Secret(), OTPAuthURL: key.URL(), QRPNG: qr.Bytes()}, nil
}

// Confirm activates the user's pending factor with a first code from it,
// and returns RecoveryCodes recovery codes — shown this once, stored only
// hashed, each good for one sign-in. The code's time step counts as used.
// MFA_ENABLED is written in the same transaction and the account mailed a
// notice. A wrong code here does not count toward the lock (the caller is
// signed in, and the secret is the one just handed to it).
//
// Errors: VALIDATION_FAILED, MFA_INVALID_CODE, NOT_FOUND (nothing
// enrolled), CONFLICT (already active), INTERNAL, SERVICE_UNAVAILABLE.
func (s *Service) Confirm(ctx context.Context, userID uuid.UUID, code string, c manaauth.Client) ([]string, error) {
	code, err := parseCode("code", code)
	if err != nil {
		return nil, err
	}
	codes := make([]string, RecoveryCodes)
	hashes := make([][]byte, RecoveryCodes)
	for i := range codes {
		if codes[i], err = newRecoveryCode(s.rand); err != nil {
			return nil, err
		}
		norm, err := normalizeRecoveryCode("recoveryCode", codes[i])
		if err != nil {
			return nil, fmt.Errorf("mfa: a new recovery code does not parse: %w", err) // unreachable
		}
		hashes[i] = recoveryHash(userID, norm)
	}
	var email string
	err = s.inTx(ctx, userID, "confirm", func(tx pgx.Tx) error {
		f, err := loadFactor(ctx, tx, userID, true)
		switch {
		case err != nil:
			return err
		case f == nil:
			return autherr.New(autherr.NotFound, "nothing to confirm; enroll first")
		case f.active:
			return errActive
		}
		step, err := s.checkCode(ctx, userID, f, code)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		if _, err := tx.Exec(ctx, `UPDATE auth.mfa_factors SET status = 'active', confirmed_at = $2, last_step = $3
			WHERE id = $1`, f.id, now, step); err != nil {
			return fmt.Errorf("mfa: activate factor: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO auth.mfa_recovery_codes (factor_id, user_id, code_hash, created_at)
			SELECT $1, $2, h, $4 FROM unnest($3::bytea[]) AS h`, f.id, userID, hashes, now); err != nil {
			return fmt.Errorf("mfa: store recovery codes: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT email FROM auth.users WHERE id = $1`, userID).Scan(&email); err != nil {
			return fmt.Errorf("mfa: account address: %w", err)
		}
		return s.events.Insert(ctx, tx, lockout.Event{Type: lockout.MFAEnabled, UserID: userID, IP: c.IP,
			UserAgent: c.UserAgent, Metadata: map[string]any{"factor": "totp", "recoveryCodes": RecoveryCodes}})
	})
	if err != nil {
		return nil, err
	}
	s.notify(ctx, "mfa_enabled", mail.MFAEnabled(email))
	return codes, nil
}

// Disable removes the user's active factor and its recovery codes:
// sessionID must have signed in recently, and p must be a code of the
// factor or one of its recovery codes — checked through the lockout gate
// like a sign-in, so a stolen session cannot try codes without limit.
// MFA_DISABLED is written (and MFA_RECOVERY_CODE_USED when a recovery
// code proved it) in the same transaction, and the account mailed a
// notice.
//
// Errors: REAUTH_REQUIRED, TOKEN_INVALID, VALIDATION_FAILED, NOT_FOUND (no
// active factor), MFA_INVALID_CODE (counts toward the lock),
// ACCOUNT_LOCKED, INTERNAL, SERVICE_UNAVAILABLE.
func (s *Service) Disable(ctx context.Context, userID, sessionID uuid.UUID, p Proof, c manaauth.Client) error {
	code, recovery, err := p.parse()
	if err != nil {
		return err
	}
	if err := s.accounts.RequireRecentAuth(ctx, userID, sessionID, 0); err != nil {
		return err
	}
	var (
		f     *factor
		email string
	)
	err = s.inTx(ctx, userID, "read factor", func(tx pgx.Tx) error {
		var err error
		if f, err = loadFactor(ctx, tx, userID, false); err != nil || f == nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT email FROM auth.users WHERE id = $1`, userID).Scan(&email)
	})
	if err != nil {
		return err
	}
	if f == nil || !f.active {
		return autherr.New(autherr.NotFound, "two-step sign-in is not on")
	}
	ticket, err := s.gate.Begin(ctx, lockout.Attempt{Email: email, Method: lockout.MFA, IP: c.IP, UserAgent: c.UserAgent})
	if err != nil {
		return err
	}
	var step int64
	if !recovery {
		if step, err = s.checkCode(ctx, userID, f, code); err != nil {
			return finish(ctx, ticket, userID, err)
		}
	}
	err = s.inTx(ctx, userID, "disable", func(tx pgx.Tx) error {
		via := "totp"
		if recovery {
			via = "recovery"
			if _, err := s.spendRecoveryCode(ctx, tx, userID, code, c); err != nil {
				return err
			}
		}
		// The time step is checked as at sign-in: a code seen once (by a
		// sign-in, say) cannot remove the factor afterwards.
		tag, err := tx.Exec(ctx, `DELETE FROM auth.mfa_factors
			WHERE id = $1 AND status = 'active' AND ($2 OR last_step IS NULL OR last_step < $3)`, f.id, recovery, step)
		if err != nil {
			return fmt.Errorf("mfa: remove factor: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errInvalidCode
		}
		if err := s.events.Insert(ctx, tx, lockout.Event{Type: lockout.MFADisabled, UserID: userID, IP: c.IP,
			UserAgent: c.UserAgent, Metadata: map[string]any{"factor": "totp", "proof": via}}); err != nil {
			return err
		}
		return ticket.SucceedTx(ctx, tx, userID)
	})
	if err != nil {
		return finish(ctx, ticket, userID, err)
	}
	s.notify(ctx, "mfa_disabled", mail.MFADisabled(email))
	return nil
}

// Status tells whether the user has an active TOTP factor and how many of
// its recovery codes are unused. A pending enrolment counts as none.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) Status(ctx context.Context, userID uuid.UUID) (Status, error) {
	var st Status
	err := s.inTx(ctx, userID, "status", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT f.status = 'active',
			  (SELECT count(*) FROM auth.mfa_recovery_codes r WHERE r.factor_id = f.id AND r.used_at IS NULL)
			FROM auth.mfa_factors f WHERE f.user_id = $1 AND f.kind = 'totp' AND f.status = 'active'`, userID).
			Scan(&st.TOTP, &st.RecoveryCodesLeft)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return st, err
}
