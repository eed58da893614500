package manaauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/web"
)

// Token purposes of auth.one_time_tokens.
const (
	purposeVerify      = "verify_email"
	purposeReset       = "reset_password"
	purposeChangeEmail = "change_email"
)

// RegisterInput is the body of POST /register.
type RegisterInput struct {
	Email    string
	Password string
	Name     string
}

// Registered is the answer of Register: the user, and a token pair when
// email verification is not required.
type Registered struct {
	User   User
	Tokens *TokenPair
}

// Register creates an account, mails the verification link, and runs the
// hooks (UserCreatedTx — the Personal space — inside the transaction,
// UserCreated — the singletons — after it).
//
// Errors: VALIDATION_FAILED, WEAK_PASSWORD (details.reason),
// EMAIL_ALREADY_REGISTERED, SIGNUP_LIMIT_REACHED, SERVICE_UNAVAILABLE.
func (s *Service) Register(ctx context.Context, in RegisterInput, c Client) (*Registered, error) {
	email, err := CanonicalEmail("email", in.Email)
	if err != nil {
		return nil, err
	}
	name, err := optionalText("name", in.Name, 200)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Policy.Check(in.Password, email); err != nil {
		return nil, err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	verifyTok, verifyHash, err := s.newToken()
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	var u User
	err = s.inTx(ctx, "register", func(tx pgx.Tx) error {
		if s.cfg.MaxDailySignups > 0 {
			// One conditional upsert: several instances agree on the cap.
			var n int
			err := tx.QueryRow(ctx, `INSERT INTO auth.signup_counts AS c (day, count) VALUES ($1, 1)
				ON CONFLICT (day) DO UPDATE SET count = c.count + 1 WHERE c.count < $2
				RETURNING count`, now.Truncate(24*time.Hour), s.cfg.MaxDailySignups).Scan(&n)
			if errors.Is(err, pgx.ErrNoRows) {
				return autherr.New(autherr.SignupLimitReached, "the daily signup limit is reached; try again tomorrow")
			}
			if err != nil {
				return err
			}
		}
		a, err := scanAccount(tx.QueryRow(ctx, `INSERT INTO auth.users (email, name, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4) RETURNING `+userColumns, email, name, hash, now))
		if isUniqueViolation(err, "users_email_key") {
			return autherr.Wrap(autherr.EmailAlreadyRegistered, err, "this email address is already registered")
		}
		if err != nil {
			return err
		}
		u = a.User
		if err := s.insertOneTime(ctx, tx, u.ID, purposeVerify, verifyHash, "", now.Add(s.cfg.VerifyTTL)); err != nil {
			return err
		}
		if err := s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.Register, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent}); err != nil {
			return err
		}
		if s.cfg.Hooks.UserCreatedTx != nil {
			return s.cfg.Hooks.UserCreatedTx(ctx, tx, u)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.cfg.Hooks.UserCreated != nil {
		if err := s.cfg.Hooks.UserCreated(ctx, u); err != nil {
			s.hookFailures.WithLabelValues("user_created").Inc()
			s.logger.Warn("manaauth: user-created hook failed; the signup stands", "user_id", u.ID.String(), "err", err)
		}
	}
	s.sendMail(ctx, "verification", mail.Verification(s.cfg.Links, email, verifyTok, s.cfg.VerifyTTL))
	out := &Registered{User: u}
	if !s.cfg.RequireEmailVerification {
		if out.Tokens, err = s.startSession(ctx, u, c, lockout.Password, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insertOneTime voids the unused tokens of the purpose and stores the new
// one, in the caller's transaction.
func (s *Service) insertOneTime(ctx context.Context, tx pgx.Tx, userID uuid.UUID, purpose string, hash []byte, newEmail string, expires time.Time) error {
	now := s.now().UTC()
	if _, err := tx.Exec(ctx, `UPDATE auth.one_time_tokens SET voided_at = $3
		WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND voided_at IS NULL`, userID, purpose, now); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO auth.one_time_tokens (user_id, purpose, token_hash, new_email, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, userID, purpose, hash, nullString(newEmail), now, expires)
	return err
}

// redeem spends a single-use token of the purpose with one conditional
// UPDATE: of any number of parallel redemptions exactly one succeeds.
func (s *Service) redeem(ctx context.Context, tx pgx.Tx, purpose, token string) (userID uuid.UUID, newEmail *string, err error) {
	if token == "" || len(token) > 256 {
		return uuid.Nil, nil, autherr.New(autherr.TokenInvalid, "invalid or expired link")
	}
	now := s.now().UTC()
	err = tx.QueryRow(ctx, `UPDATE auth.one_time_tokens SET used_at = $3
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND voided_at IS NULL AND expires_at > $3
		RETURNING user_id, new_email`, hashToken(token), purpose, now).Scan(&userID, &newEmail)
	if errors.Is(err, pgx.ErrNoRows) {
		var expires time.Time
		var used, voided *time.Time
		lerr := tx.QueryRow(ctx, `SELECT expires_at, used_at, voided_at FROM auth.one_time_tokens WHERE token_hash = $1 AND purpose = $2`,
			hashToken(token), purpose).Scan(&expires, &used, &voided)
		if lerr == nil && used == nil && voided == nil && !expires.After(now) {
			return uuid.Nil, nil, autherr.New(autherr.TokenExpired, "this link has expired")
		}
		if lerr != nil && !errors.Is(lerr, pgx.ErrNoRows) {
			return uuid.Nil, nil, lerr
		}
		return uuid.Nil, nil, autherr.New(autherr.TokenInvalid, "invalid or expired link")
	}
	return userID, newEmail, err
}

// VerifyEmail redeems a verification link: the address verification
// mailed at signup, or the confirmation of an email change (mailed to the
// new address), which switches the address.
//
// Errors: TOKEN_INVALID, TOKEN_EXPIRED, EMAIL_ALREADY_REGISTERED,
// SERVICE_UNAVAILABLE.
func (s *Service) VerifyEmail(ctx context.Context, token string, c Client) (User, error) {
	var u User
	err := s.inTx(ctx, "verify email", func(tx pgx.Tx) error {
		userID, _, err := s.redeem(ctx, tx, purposeVerify, token)
		if err != nil {
			return err
		}
		a, err := scanAccount(tx.QueryRow(ctx, `UPDATE auth.users SET email_verified_at = coalesce(email_verified_at, $2), updated_at = $2
			WHERE id = $1 RETURNING `+userColumns, userID, s.now().UTC()))
		if err != nil {
			return err
		}
		u = a.User
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.EmailVerified, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent})
	})
	if autherr.CodeOf(err) == autherr.TokenInvalid {
		return s.confirmEmailChange(ctx, token, c)
	}
	return u, err
}

// ResendVerification mails a new verification link (voiding the old one)
// when the address belongs to an unverified account; it answers the same
// either way.
//
// Errors: VALIDATION_FAILED, SERVICE_UNAVAILABLE.
func (s *Service) ResendVerification(ctx context.Context, email string) error {
	email, err := CanonicalEmail("email", email)
	if err != nil {
		return err
	}
	tok, h, err := s.newToken()
	if err != nil {
		return err
	}
	send := false
	err = s.inTx(ctx, "resend verification", func(tx pgx.Tx) error {
		a, found, err := findByEmail(ctx, tx, email)
		if err != nil || !found || a.EmailVerified {
			return err
		}
		send = true
		return s.insertOneTime(ctx, tx, a.ID, purposeVerify, h, "", s.now().UTC().Add(s.cfg.VerifyTTL))
	})
	if err == nil && send {
		s.sendMail(ctx, "verification", mail.Verification(s.cfg.Links, email, tok, s.cfg.VerifyTTL))
	}
	return err
}

// ForgotPassword mails a single-use reset link (1 h) when the address has an
// account; it answers the same either way.
//
// Errors: VALIDATION_FAILED, SERVICE_UNAVAILABLE.
func (s *Service) ForgotPassword(ctx context.Context, email string, c Client) error {
	email, err := CanonicalEmail("email", email)
	if err != nil {
		return err
	}
	tok, h, err := s.newToken()
	if err != nil {
		return err
	}
	send := false
	err = s.inTx(ctx, "forgot password", func(tx pgx.Tx) error {
		a, found, err := findByEmail(ctx, tx, email)
		if err != nil || !found {
			return err
		}
		send = true
		if err := s.insertOneTime(ctx, tx, a.ID, purposeReset, h, "", s.now().UTC().Add(s.cfg.ResetTTL)); err != nil {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.PasswordResetRequested, UserID: a.ID, IP: c.IP, UserAgent: c.UserAgent})
	})
	if err == nil && send {
		s.sendMail(ctx, "password reset", mail.PasswordReset(s.cfg.Links, email, tok, s.cfg.ResetTTL))
	}
	return err
}

// ResetPassword redeems a reset token, sets the new password, revokes every
// session of the user and lifts the lockout of the address.
//
// Errors: TOKEN_INVALID, TOKEN_EXPIRED, WEAK_PASSWORD, SERVICE_UNAVAILABLE.
func (s *Service) ResetPassword(ctx context.Context, token, newPassword string, c Client) error {
	if s.cfg.Policy.TooLong(newPassword) {
		return s.cfg.Policy.Check(newPassword, "")
	}
	var email string
	var userID uuid.UUID
	err := s.inTx(ctx, "reset password", func(tx pgx.Tx) error {
		var err error
		if userID, _, err = s.redeem(ctx, tx, purposeReset, token); err != nil {
			return err
		}
		a, err := findByID(ctx, tx, userID)
		if err != nil {
			return err
		}
		email = a.Email
		if err := s.cfg.Policy.Check(newPassword, a.Email); err != nil {
			return err
		}
		hash, err := s.cfg.Hasher.Hash(ctx, newPassword)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		if _, err := tx.Exec(ctx, `UPDATE auth.users SET password_hash = $2, updated_at = $3 WHERE id = $1`, userID, hash, now); err != nil {
			return err
		}
		if _, err := revokeSessions(ctx, tx, userID, uuid.Nil, "password_reset", now); err != nil {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.PasswordReset, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
	})
	if err != nil {
		return err
	}
	return s.cfg.Gate.Clear(ctx, email, userID)
}

// Profile returns the user.
//
// Errors: NOT_FOUND (the account is gone), SERVICE_UNAVAILABLE.
func (s *Service) Profile(ctx context.Context, userID uuid.UUID) (User, error) {
	a, err := findByID(ctx, s.cfg.Pool, userID)
	return a.User, err
}

// ProfileUpdate holds the fields to change; nil leaves a field as it is,
// an empty string clears it.
type ProfileUpdate struct {
	Name  *string
	Image *string
}

// UpdateProfile changes name and image.
//
// Errors: VALIDATION_FAILED, NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *Service) UpdateProfile(ctx context.Context, userID uuid.UUID, p ProfileUpdate, c Client) (User, error) {
	fields := map[string]string{}
	var name, image any
	if p.Name != nil {
		v, err := optionalText("name", *p.Name, 200)
		if err != nil {
			return User{}, err
		}
		name = v
	}
	if p.Image != nil {
		img := strings.TrimSpace(*p.Image)
		if img != "" {
			u, err := url.Parse(img)
			if err != nil || len(img) > 2048 || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" ||
				u.User != nil || strings.ContainsAny(img, " \"<>\\^`{|}") {
				fields["image"] = "must be an absolute http(s) URL of at most 2048 characters"
			}
		}
		if img != "" {
			image = img
		}
	}
	if len(fields) > 0 {
		return User{}, web.Invalid(fields)
	}
	var u User
	err := s.inTx(ctx, "update profile", func(tx pgx.Tx) error {
		a, err := scanAccount(tx.QueryRow(ctx, `UPDATE auth.users SET
			name = CASE WHEN $2 THEN $3 ELSE name END,
			image = CASE WHEN $4 THEN $5 ELSE image END,
			updated_at = $6
			WHERE id = $1 RETURNING `+userColumns, userID, p.Name != nil, name, p.Image != nil, image, s.now().UTC()))
		if errors.Is(err, pgx.ErrNoRows) {
			return autherr.New(autherr.NotFound, "user not found")
		}
		if err != nil {
			return err
		}
		u = a.User
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.ProfileUpdated, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
	})
	return u, err
}

// recheck verifies the password of a signed-in user through the lockout
// gate, like a login.
func (s *Service) recheck(ctx context.Context, userID uuid.UUID, password string, c Client) (account, error) {
	if s.cfg.Policy.TooLong(password) {
		return account{}, invalidField("password", "too long")
	}
	a, err := findByID(ctx, s.cfg.Pool, userID)
	if err != nil {
		return account{}, err
	}
	return s.checkPassword(ctx, a.Email, password, lockout.Attempt{Email: a.Email, Method: lockout.Password, IP: c.IP, UserAgent: c.UserAgent})
}

// ChangeEmail re-checks the password and mails a confirmation link to the
// new address; the address switches when the link is redeemed.
//
// Errors: VALIDATION_FAILED, INVALID_CREDENTIALS, ACCOUNT_LOCKED,
// EMAIL_ALREADY_REGISTERED, SERVICE_UNAVAILABLE.
func (s *Service) ChangeEmail(ctx context.Context, userID uuid.UUID, newEmail, password string, c Client) error {
	newEmail, err := CanonicalEmail("newEmail", newEmail)
	if err != nil {
		return err
	}
	a, err := s.recheck(ctx, userID, password, c)
	if err != nil {
		return err
	}
	if newEmail == a.Email {
		return invalidField("newEmail", "is the current address")
	}
	tok, h, err := s.newToken()
	if err != nil {
		return err
	}
	err = s.inTx(ctx, "change email", func(tx pgx.Tx) error {
		_, taken, err := findByEmail(ctx, tx, newEmail)
		if err != nil {
			return err
		}
		if taken {
			return autherr.New(autherr.EmailAlreadyRegistered, "this email address is already registered")
		}
		if err := s.insertOneTime(ctx, tx, userID, purposeChangeEmail, h, newEmail, s.now().UTC().Add(s.cfg.ChangeEmailTTL)); err != nil {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.EmailChangeRequested, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
	})
	if err == nil {
		s.sendMail(ctx, "email change", mail.EmailChange(s.cfg.Links, newEmail, tok, s.cfg.ChangeEmailTTL))
	}
	return err
}

// confirmEmailChange redeems a change-email token and switches the address
// (verified, since the link reached it).
func (s *Service) confirmEmailChange(ctx context.Context, token string, c Client) (User, error) {
	var u User
	err := s.inTx(ctx, "confirm email change", func(tx pgx.Tx) error {
		userID, newEmail, err := s.redeem(ctx, tx, purposeChangeEmail, token)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		a, err := scanAccount(tx.QueryRow(ctx, `UPDATE auth.users SET email = $2, email_verified_at = $3, updated_at = $3
			WHERE id = $1 RETURNING `+userColumns, userID, *newEmail, now))
		if isUniqueViolation(err, "users_email_key") {
			return autherr.Wrap(autherr.EmailAlreadyRegistered, err, "this email address is already registered")
		}
		if err != nil {
			return err
		}
		u = a.User
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.EmailChanged, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
	})
	return u, err
}

// ChangePassword re-checks the current password through the lockout gate,
// sets the new one and revokes every other session.
//
// Errors: VALIDATION_FAILED, INVALID_CREDENTIALS, ACCOUNT_LOCKED,
// WEAK_PASSWORD, SERVICE_UNAVAILABLE.
func (s *Service) ChangePassword(ctx context.Context, userID, sessionID uuid.UUID, current, newPassword string, c Client) error {
	a, err := s.recheck(ctx, userID, current, c)
	if err != nil {
		return err
	}
	if err := s.cfg.Policy.Check(newPassword, a.Email); err != nil {
		return err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "change password", func(tx pgx.Tx) error {
		now := s.now().UTC()
		if _, err := tx.Exec(ctx, `UPDATE auth.users SET password_hash = $2, updated_at = $3 WHERE id = $1`, userID, hash, now); err != nil {
			return err
		}
		if _, err := revokeSessions(ctx, tx, userID, sessionID, "password_changed", now); err != nil {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.PasswordChanged, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
	})
}

// DeleteAccount re-checks the password through the lockout gate and
// deletes the user; everything owned cascades away in the database.
// Hooks.UserDeletingTx runs first in the same transaction: it may refuse
// (spaces: the only owner of a space with other members, until another
// member is made an owner) and erases what the cascade cannot reach
// (gdpr.Service.Erase: login attempts and lockouts keyed by the user's
// addresses, security events anonymised).
//
// Errors: VALIDATION_FAILED, INVALID_CREDENTIALS, ACCOUNT_LOCKED,
// the hook's (CONFLICT details.reason "sole_owner", details.spaceId),
// SERVICE_UNAVAILABLE.
func (s *Service) DeleteAccount(ctx context.Context, userID uuid.UUID, password string, c Client) error {
	if _, err := s.recheck(ctx, userID, password, c); err != nil {
		return err
	}
	return s.inTx(ctx, "delete account", func(tx pgx.Tx) error {
		if hook := s.cfg.Hooks.UserDeletingTx; hook != nil {
			if err := hook(ctx, tx, userID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM auth.users WHERE id = $1`, userID); err != nil {
			return err
		}
		// The user's own events went with the account (or were
		// anonymised by the hook); this one stays, without a user id, as
		// the trace that an account was erased.
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.AccountDeleted, IP: c.IP, UserAgent: c.UserAgent})
	})
}

// SecurityEvent is one entry of GET /security-events.
type SecurityEvent struct {
	ID        int64           `json:"id"`
	Type      string          `json:"type"`
	IP        *string         `json:"ipAddress"`
	UserAgent *string         `json:"userAgent"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt time.Time       `json:"createdAt"`
}

// SecurityEvents lists the user's own events, newest first, limit at a
// time (1..100), older than the id before (0: from the newest). next is
// the cursor for the following page, 0 when there is none.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) SecurityEvents(ctx context.Context, userID uuid.UUID, before int64, limit int) (events []SecurityEvent, next int64, err error) {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT id, event_type, host(ip_address), user_agent, metadata, created_at
		FROM auth.security_events WHERE user_id = $1 AND ($2::bigint = 0 OR id < $2::bigint)
		ORDER BY id DESC LIMIT $3`, userID, before, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("manaauth: security events: %w", err)
	}
	events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (SecurityEvent, error) {
		var e SecurityEvent
		var meta []byte
		err := r.Scan(&e.ID, &e.Type, &e.IP, &e.UserAgent, &meta, &e.CreatedAt)
		e.Metadata = meta
		if meta == nil {
			e.Metadata = json.RawMessage("null")
		}
		e.CreatedAt = e.CreatedAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("manaauth: security events: %w", err)
	}
	if len(events) > limit {
		events = events[:limit]
		next = events[limit-1].ID
	}
	return events, next, nil
}

// SignupStatus is the answer of GET /signup-status.
type SignupStatus struct {
	Open           bool `json:"open"`
	Limit          *int `json:"limit"`
	RemainingToday *int `json:"remainingToday"`
}

// Signups reports whether signups are open today.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) Signups(ctx context.Context) (SignupStatus, error) {
	if s.cfg.MaxDailySignups == 0 {
		return SignupStatus{Open: true}, nil
	}
	var n int
	err := s.cfg.Pool.QueryRow(ctx, `SELECT coalesce((SELECT count FROM auth.signup_counts WHERE day = $1), 0)`,
		s.now().UTC().Truncate(24*time.Hour)).Scan(&n)
	if err != nil {
		return SignupStatus{}, fmt.Errorf("manaauth: signup status: %w", err)
	}
	limit := s.cfg.MaxDailySignups
	rem := max(0, limit-n)
	return SignupStatus{Open: rem > 0, Limit: &limit, RemainingToday: &rem}, nil
}

// optionalText trims v and returns nil for empty, or an error naming field
// when it is longer than max code points or not valid UTF-8.
func optionalText(field, v string, maxLen int) (*string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxLen || strings.ContainsAny(v, "\x00\r\n") {
		return nil, invalidField(field, fmt.Sprintf("at most %d characters of text on one line", maxLen))
	}
	return &v, nil
}
