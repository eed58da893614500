package manaauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/web"
)

// SignIn describes a sign-in whose credential another package checked: a
// passkey assertion, or the second factor after a password. StartSession
// turns it into a session exactly as a password login does.
type SignIn struct {
	UserID uuid.UUID
	// Method is how the session was authenticated: lockout.Passkey, or
	// lockout.MFA for a password completed by a second factor. It is the
	// session's method (GET /sessions) and the method of the
	// LOGIN_SUCCESS event and the auth.login_attempts row.
	Method lockout.Method
	Client Client
	// Ticket is the gate's admission of the check (lockout.Service.Begin
	// with the account's email); its success commits with the session.
	// Required: every credential path passes the gate.
	Ticket *lockout.Ticket
	// InTx, when set, runs inside the transaction that starts the
	// session, before the session is written (a passkey's sign count and
	// last use); its error fails the sign-in and takes the admission back
	// (unless it counts toward the lock, which Finish records).
	InTx func(ctx context.Context, tx pgx.Tx) error
}

// StartSession starts a session for a sign-in another package verified:
// a session with its refresh family and web session cookie, the token pair,
// and — in the same transaction — the gate's record of the success
// (LOGIN_SUCCESS with the method, a row in auth.login_attempts). A
// disabled account is refused (recorded as LOGIN_REFUSED); a deleted one
// answers as a failed credential would. Email verification is not
// required: the credential itself proved control of the account.
//
// Errors: ACCOUNT_DISABLED, INVALID_CREDENTIALS (the account is gone),
// whatever InTx returns, SERVICE_UNAVAILABLE.
func (s *Service) StartSession(ctx context.Context, in SignIn) (*TokenPair, error) {
	switch {
	case in.Ticket == nil:
		return nil, errors.New("manaauth: StartSession: a gate ticket is required")
	case in.Method != lockout.Passkey && in.Method != lockout.MFA && in.Method != lockout.Password:
		return nil, fmt.Errorf("manaauth: StartSession: unknown method %q", in.Method)
	}
	var (
		p        *TokenPair
		refusal  error
		disabled bool
	)
	err := s.inTx(ctx, "start session", func(tx pgx.Tx) error {
		// FOR SHARE: an operator's disable waits for this sign-in to commit
		// and then revokes its session too.
		acct, err := scanAccount(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM auth.users WHERE id = $1 FOR SHARE`, in.UserID))
		if errors.Is(err, pgx.ErrNoRows) {
			refusal = errInvalidCredentials
			return nil
		}
		if err != nil {
			return fmt.Errorf("manaauth: start session: find user: %w", err)
		}
		if acct.disabled {
			disabled = true
			return nil
		}
		if in.InTx != nil {
			if err := in.InTx(ctx, tx); err != nil {
				return err
			}
		}
		b, pair, err := s.newSession(acct.User, in.Client, in.Method)
		if err != nil {
			return err
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("manaauth: start session: %w", err)
		}
		if err := in.Ticket.SucceedTx(ctx, tx, acct.ID); err != nil {
			return err
		}
		p = pair
		return nil
	})
	switch {
	case err != nil:
		return nil, s.finish(ctx, in.Ticket, in.UserID, err)
	case disabled:
		if err := in.Ticket.Refuse(ctx, in.UserID, "account_disabled"); err != nil {
			return nil, err
		}
		return nil, errDisabled
	case refusal != nil:
		return nil, s.finish(ctx, in.Ticket, uuid.Nil, refusal)
	}
	return p, nil
}

// MFAChallenge starts the second step of a sign-in for userID when a
// second factor is configured and active for the account (see
// SecondFactor): a passkey sign-in without user verification asks for it.
// nil when there is none.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) MFAChallenge(ctx context.Context, userID uuid.UUID, method lockout.Method, c Client) (*MFAChallenge, error) {
	if s.cfg.SecondFactor == nil {
		return nil, nil
	}
	return s.cfg.SecondFactor.Challenge(ctx, userID, method, c)
}

// WriteSignIn answers a successful sign-in as POST /login does: status
// 200, the token pair as JSON, and the web session cookie with its CSRF
// cookie. Packages that start sessions through StartSession (passkey, mfa)
// answer with it.
func (s *Service) WriteSignIn(w http.ResponseWriter, p *TokenPair) error {
	s.setCookie(w, p)
	return web.JSON(w, http.StatusOK, p)
}

// WriteMFAChallenge answers a sign-in that needs its second step: status
// 200, {mfaRequired:true, mfaToken, methods}, no tokens and no cookie.
func WriteMFAChallenge(w http.ResponseWriter, ch *MFAChallenge) error {
	return web.JSON(w, http.StatusOK, mfaBody(ch))
}

func mfaBody(ch *MFAChallenge) map[string]any {
	return map[string]any{"mfaRequired": true, "mfaToken": ch.Token, "methods": ch.Methods}
}

// ReauthWithin is how recent a session's authentication must be for the
// actions api.md marks "recent" (registering a passkey, enrolling or
// removing a second factor).
const ReauthWithin = 10 * time.Minute

// RequireRecentAuth answers REAUTH_REQUIRED unless sessionID, a live
// session of userID, was authenticated (signed in) within the last
// within; ReauthWithin when within is 0.
//
// Errors: REAUTH_REQUIRED, TOKEN_INVALID (the session is revoked, expired
// or not the user's), SERVICE_UNAVAILABLE.
func (s *Service) RequireRecentAuth(ctx context.Context, userID, sessionID uuid.UUID, within time.Duration) error {
	if within <= 0 {
		within = ReauthWithin
	}
	var created time.Time
	err := s.cfg.Pool.QueryRow(ctx, `SELECT created_at FROM auth.sessions
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3`, sessionID, userID, s.now()).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return autherr.New(autherr.TokenInvalid, "session revoked")
	}
	if err != nil {
		return fmt.Errorf("manaauth: recent authentication: %w", err)
	}
	if s.now().Sub(created) > within {
		e := autherr.New(autherr.ReauthRequired, "sign in again to do this")
		e.Details = map[string]any{"maxAgeSeconds": int(within / time.Second)}
		return e
	}
	return nil
}

// CheckPassword re-checks the password of a signed-in user through the
// lockout gate, exactly as change-password does (a wrong one counts toward
// the lock): for actions of other packages that need the password again
// (enrolling a second factor). It returns the user.
//
// Errors: VALIDATION_FAILED, INVALID_CREDENTIALS, ACCOUNT_LOCKED,
// NOT_FOUND (the account is gone), SERVICE_UNAVAILABLE.
func (s *Service) CheckPassword(ctx context.Context, userID uuid.UUID, password string, c Client) (User, error) {
	a, err := s.recheck(ctx, userID, password, c)
	return a.User, err
}

// Gate is the lockout gate every credential check of the service passes;
// packages that check other credentials for its accounts (passkey, mfa)
// pass the same one.
func (s *Service) Gate() *lockout.Service { return s.cfg.Gate }

// Events is the security event log the service writes.
func (s *Service) Events() *lockout.Events { return s.cfg.Events }
