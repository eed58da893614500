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

// Client describes where a request came from; zero values are stored as
// NULL.
type Client struct {
	IP        netip.Addr
	UserAgent string
}

// TokenPair is the answer of login, refresh and session-to-token.
type TokenPair struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	TokenType    string `json:"tokenType"`
	ExpiresIn    int    `json:"expiresIn"`
	User         User   `json:"user"`

	// SessionCookie is the value of the web session cookie, set on login
	// only; never serialised.
	SessionCookie string    `json:"-"`
	SessionID     uuid.UUID `json:"-"`
	ExpiresAt     time.Time `json:"-"`
}

var errInvalidCredentials = autherr.New(autherr.InvalidCredentials, "invalid email or password")

// LoginResult is the answer of Login: a token pair, or — when the account
// has an active second factor — the challenge of the second step, to be
// completed through the second factor's own route (mfa's /verify).
type LoginResult struct {
	Tokens *TokenPair
	MFA    *MFAChallenge
}

// MFAChallenge is the second step of a login: api.md's 200
// {mfaRequired:true, mfaToken, methods}.
type MFAChallenge struct {
	Token   string   // single use, short-lived, bound to this login
	Methods []string // e.g. "totp", "recovery"
}

// SecondFactor is what Login consults after the password checked out (the
// mfa package implements it; the host wires it through Config).
type SecondFactor interface {
	// Challenge starts the second step of a login for userID and returns
	// it, or nil when the user has no active factor. Its error fails the
	// login (and does not count toward the lock unless it says so).
	Challenge(ctx context.Context, userID uuid.UUID, method lockout.Method, c Client) (*MFAChallenge, error)
}

// Login checks email and password through the lockout gate.
//
// Unknown email, wrong password and empty password give the same answer
// after the same work (an argon2id verification against a dummy hash where
// there is no real one); so does a locked account, whose answer differs
// only in its code. With a second factor configured (Config.SecondFactor)
// and active for the account, the result carries its challenge instead of
// tokens; the right password then clears nothing at the gate (see
// lockout.Ticket.Challenge).
//
// Errors: VALIDATION_FAILED (malformed email, password over the maximum
// length — refused before any hashing), INVALID_CREDENTIALS, ACCOUNT_LOCKED,
// EMAIL_NOT_VERIFIED and ACCOUNT_DISABLED (only after the password checked
// out), SERVICE_UNAVAILABLE.
func (s *Service) Login(ctx context.Context, email, password string, c Client) (*LoginResult, error) {
	if s.cfg.Policy.TooLong(password) {
		return nil, invalidField("password", "too long")
	}
	email, err := CanonicalEmail("email", email)
	if err != nil {
		return nil, err
	}
	acct, ticket, err := s.verifyPassword(ctx, email, password, lockout.Attempt{Email: email, Method: lockout.Password, IP: c.IP, UserAgent: c.UserAgent})
	if err != nil {
		return nil, err
	}
	// Refusals are recorded as what they are: a refused login
	// (LOGIN_REFUSED), neither a success nor a failure that counts toward
	// the lock.
	if acct.disabled {
		if err := ticket.Refuse(ctx, acct.ID, "account_disabled"); err != nil {
			return nil, err
		}
		return nil, errDisabled
	}
	if s.cfg.RequireEmailVerification && !acct.EmailVerified {
		if err := ticket.Refuse(ctx, acct.ID, "email_not_verified"); err != nil {
			return nil, err
		}
		return nil, autherr.New(autherr.EmailNotVerified, "verify your email address first")
	}
	if s.cfg.SecondFactor != nil {
		ch, err := s.cfg.SecondFactor.Challenge(ctx, acct.ID, lockout.Password, c)
		if err != nil {
			return nil, s.finish(ctx, ticket, acct.ID, err)
		}
		if ch != nil {
			if err := ticket.Challenge(ctx, acct.ID); err != nil {
				return nil, err
			}
			return &LoginResult{MFA: ch}, nil
		}
	}
	// The success is recorded in the transaction that starts the session:
	// one commit for both.
	p, err := s.startSession(ctx, acct.User, c, lockout.Password, ticket)
	if err != nil {
		return nil, s.finish(ctx, ticket, acct.ID, err)
	}
	return &LoginResult{Tokens: p}, nil
}

var errDisabled = autherr.New(autherr.AccountDisabled, "this account is disabled")

// checkPassword runs one credential check through the gate and returns the
// account when the password is right, with the success recorded. It backs
// the password re-checks of change-password, change-email and account
// deletion.
func (s *Service) checkPassword(ctx context.Context, email, password string, attempt lockout.Attempt) (account, error) {
	acct, ticket, err := s.verifyPassword(ctx, email, password, attempt)
	if err != nil {
		return account{}, err
	}
	return acct, s.finish(ctx, ticket, acct.ID, nil)
}

// verifyPassword runs one credential check through the gate. A failure is
// recorded before it returns; when the password is right it returns the
// account and the ticket still open, for the caller to record the success
// (Finish, or SucceedTx inside its own transaction).
func (s *Service) verifyPassword(ctx context.Context, email, password string, attempt lockout.Attempt) (account, *lockout.Ticket, error) {
	// The account lookup runs while the gate admits the attempt: two
	// round trips overlap instead of following each other.
	type lookup struct {
		acct  account
		found bool
		err   error
	}
	looked := make(chan lookup, 1)
	go func() {
		a, found, err := findByEmail(ctx, s.cfg.Pool, email)
		looked <- lookup{a, found, err}
	}()
	ticket, err := s.cfg.Gate.Begin(ctx, attempt)
	l := <-looked
	if err != nil {
		if l.err != nil {
			// The gate's answer is what the caller gets; the lookup's own
			// failure is logged, not dropped.
			s.logger.Warn("manaauth: account lookup failed while the gate refused", "err", l.err)
		}
		if autherr.CodeOf(err) == autherr.AccountLocked {
			// Same work as every other branch.
			if derr := s.cfg.Hasher.DummyVerify(ctx, password); derr != nil {
				return account{}, nil, derr
			}
		}
		return account{}, nil, err
	}
	acct, found := l.acct, l.found
	if l.err != nil {
		return account{}, nil, s.finish(ctx, ticket, uuid.Nil, l.err)
	}
	if !found || acct.passwordHash == nil || password == "" {
		if derr := s.cfg.Hasher.DummyVerify(ctx, password); derr != nil {
			return account{}, nil, s.finish(ctx, ticket, acct.ID, derr)
		}
		return account{}, nil, s.finish(ctx, ticket, acct.ID, errInvalidCredentials)
	}
	ok, rehash, err := s.cfg.Hasher.Verify(ctx, password, *acct.passwordHash)
	if err != nil {
		return account{}, nil, s.finish(ctx, ticket, acct.ID, err)
	}
	if !ok {
		return account{}, nil, s.finish(ctx, ticket, acct.ID, errInvalidCredentials)
	}
	if rehash {
		s.rehash(ctx, acct.ID, password)
	}
	return acct, ticket, nil
}

// finish records the outcome at the gate and returns the error the caller
// answers with: the outcome, or the gate's own failure to record it.
func (s *Service) finish(ctx context.Context, t *lockout.Ticket, userID uuid.UUID, outcome error) error {
	if err := t.Finish(ctx, userID, outcome); err != nil {
		if outcome != nil && !autherr.CountsTowardLockout(outcome) {
			return errors.Join(outcome, err)
		}
		return err
	}
	return outcome
}

// rehash stores a new hash made with the current parameters after a
// successful login. Failing to do so costs nothing but the upgrade, which
// the next login retries; it is logged.
func (s *Service) rehash(ctx context.Context, userID uuid.UUID, password string) {
	h, err := s.cfg.Hasher.Hash(ctx, password)
	if err == nil {
		_, err = s.cfg.Pool.Exec(ctx, `UPDATE auth.users SET password_hash = $2, updated_at = $3 WHERE id = $1`, userID, h, s.now())
	}
	if err != nil {
		s.logger.Warn("manaauth: password rehash failed; retried at the next login", "user_id", userID.String(), "err", err)
	}
}

// startSession creates a session with its first refresh token and the
// web session cookie, and signs the access token. When ticket is set, its
// success is recorded in the same implicit transaction: one batch, one
// round trip.
func (s *Service) startSession(ctx context.Context, u User, c Client, method lockout.Method, ticket *lockout.Ticket) (*TokenPair, error) {
	b, p, err := s.newSession(u, c, method)
	if err != nil {
		return nil, err
	}
	if err := ticket.QueueSuccess(b, u.ID); err != nil {
		return nil, err
	}
	if err := s.cfg.Pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("manaauth: start session: %w", err)
	}
	return p, nil
}

// newSession prepares a session for u: the batch that writes it (the
// session row and its first refresh token) and the token pair it grants
// once written.
func (s *Service) newSession(u User, c Client, method lockout.Method) (*pgx.Batch, *TokenPair, error) {
	now := s.now().UTC()
	refresh, refreshHash, err := s.newToken()
	if err != nil {
		return nil, nil, err
	}
	cookieTok, cookieHash, err := s.newToken()
	if err != nil {
		return nil, nil, err
	}
	sid := uuid.New()
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO auth.sessions (id, user_id, cookie_hash, ip_address, user_agent, created_at, last_used_at, expires_at, method)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)`,
		sid, u.ID, cookieHash, nullAddr(c.IP), nullString(c.UserAgent), now, now.Add(s.cfg.SessionTTL), string(method))
	b.Queue(`INSERT INTO auth.refresh_tokens (session_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		sid, refreshHash, now, now.Add(s.cfg.SessionTTL))
	p, err := s.pair(u, sid, refresh)
	if err != nil {
		return nil, nil, err
	}
	p.SessionCookie = cookieTok
	return b, p, nil
}

func (s *Service) pair(u User, sid uuid.UUID, refresh string) (*TokenPair, error) {
	access, exp, err := s.cfg.Tokens.Issue(u.ID, u.Email, sid)
	if err != nil {
		return nil, fmt.Errorf("manaauth: sign access token: %w", err)
	}
	return &TokenPair{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int(s.cfg.Tokens.TTL() / time.Second), User: u, SessionID: sid, ExpiresAt: exp}, nil
}

// Refresh spends a refresh token and returns a new pair. Rotation is one
// conditional UPDATE (… WHERE spent_at IS NULL), so of many parallel
// refreshes of one token exactly one spends it. The child token is derived
// from the parent, so the others — and a client retrying after a lost
// answer — receive the same child while the spent token is within
// RefreshGrace. A spent token presented later is a reuse: the whole family
// (the session) is revoked and TOKEN_REUSE_DETECTED recorded.
//
// Errors: TOKEN_INVALID (unknown, revoked, reused), TOKEN_EXPIRED,
// SERVICE_UNAVAILABLE.
func (s *Service) Refresh(ctx context.Context, token string, c Client) (*TokenPair, error) {
	if token == "" || len(token) > 256 {
		return nil, autherr.New(autherr.TokenInvalid, "invalid refresh token")
	}
	now := s.now().UTC()
	h := hashToken(token)
	child, childHash := s.childToken(token)
	// The common case is one statement, one round trip, one implicit
	// transaction: spend the token, write its child, touch the session and
	// read the user.
	for attempt := 0; ; attempt++ {
		p, again, err := s.refresh(ctx, h, child, childHash, now, c)
		if !again || attempt > 0 {
			return p, err
		}
	}
}

// refresh is one try of Refresh; again reports a token that was neither
// spendable nor spent — a concurrent rotation rolled back between the two
// reads — which is worth one more try.
func (s *Service) refresh(ctx context.Context, h []byte, child string, childHash []byte, now time.Time, c Client) (p *TokenPair, again bool, err error) {
	sid, acct, err := s.rotate(ctx, h, childHash, now)
	switch {
	case err == nil:
		p, err = s.pair(acct.User, sid, child)
		return p, false, err
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, false, fmt.Errorf("manaauth: refresh: %w", err)
	}
	// Not spendable: find out why, in a transaction of its own.
	var (
		userID   uuid.UUID
		outcome  error
		resolved bool
	)
	err = s.inTx(ctx, "refresh", func(tx pgx.Tx) error {
		var tokID uuid.UUID
		var spentAt, revokedAt *time.Time
		var tokExpires, sessExpires time.Time
		var disabled bool
		err := tx.QueryRow(ctx, `
			SELECT rt.id, rt.session_id, s.user_id, rt.spent_at, rt.expires_at, s.revoked_at, s.expires_at, u.disabled_at IS NOT NULL
			FROM auth.refresh_tokens rt JOIN auth.sessions s ON s.id = rt.session_id JOIN auth.users u ON u.id = s.user_id
			WHERE rt.token_hash = $1`, h).Scan(&tokID, &sid, &userID, &spentAt, &tokExpires, &revokedAt, &sessExpires, &disabled)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			outcome = autherr.New(autherr.TokenInvalid, "invalid refresh token")
			return nil
		case err != nil:
			return err
		case disabled:
			outcome = errDisabled
			return nil
		case revokedAt != nil:
			outcome = autherr.New(autherr.TokenInvalid, "session revoked")
			return nil
		case !tokExpires.After(now) || !sessExpires.After(now):
			outcome = autherr.New(autherr.TokenExpired, "refresh token expired")
			return nil
		case spentAt == nil:
			again = true
			outcome = autherr.New(autherr.TokenInvalid, "invalid refresh token")
			return nil
		}
		// Spent. Within the grace window the same child is handed out
		// again, as long as the child itself was not used yet.
		if now.Sub(*spentAt) <= s.cfg.RefreshGrace {
			var childSpent *time.Time
			err := tx.QueryRow(ctx, `SELECT spent_at FROM auth.refresh_tokens WHERE parent_id = $1 AND token_hash = $2`,
				tokID, childHash).Scan(&childSpent)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if err == nil && childSpent == nil {
				resolved = true
				return nil
			}
		}
		outcome = autherr.New(autherr.TokenInvalid, "refresh token reused")
		// Only the replay that revokes the family records the event: a
		// burst of parallel replays is one incident.
		tag, err := tx.Exec(ctx, `UPDATE auth.sessions SET revoked_at = $2, revoke_reason = 'token_reuse'
			WHERE id = $1 AND revoked_at IS NULL`, sid, now)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.TokenReuseDetected, UserID: userID,
			IP: c.IP, UserAgent: c.UserAgent, Metadata: map[string]any{"sessionId": sid.String()}})
	})
	if err != nil {
		return nil, false, err
	}
	if !resolved {
		return nil, again, outcome
	}
	if acct, err = findByID(ctx, s.cfg.Pool, userID); err != nil {
		return nil, false, err
	}
	p, err = s.pair(acct.User, sid, child)
	return p, false, err
}

// rotateSQL spends a refresh token and writes its child in one statement:
// the conditional UPDATE (… WHERE spent_at IS NULL) makes exactly one of
// many parallel refreshes of a token spend it; the others see no row and
// take the slow path. The data-modifying CTEs all run, in one snapshot.
const rotateSQL = `
WITH spent AS (
  UPDATE auth.refresh_tokens rt SET spent_at = $2
  FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id
  WHERE rt.token_hash = $1 AND rt.spent_at IS NULL AND rt.expires_at > $2
    AND s.id = rt.session_id AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.disabled_at IS NULL
  RETURNING rt.id, rt.session_id, s.expires_at, s.user_id),
child AS (
  INSERT INTO auth.refresh_tokens (session_id, parent_id, token_hash, created_at, expires_at)
  SELECT session_id, id, $3, $2, expires_at FROM spent),
touched AS (
  UPDATE auth.sessions SET last_used_at = $2 WHERE id = (SELECT session_id FROM spent))
SELECT spent.session_id, ` + qualifiedUserColumns + `
FROM spent JOIN auth.users u ON u.id = spent.user_id`

// rotate runs rotateSQL; pgx.ErrNoRows when the token is not spendable.
func (s *Service) rotate(ctx context.Context, hash, childHash []byte, now time.Time) (uuid.UUID, account, error) {
	var sid uuid.UUID
	var a account
	err := s.cfg.Pool.QueryRow(ctx, rotateSQL, hash, now, childHash).Scan(&sid,
		&a.ID, &a.Email, &a.Name, &a.Image, &a.passwordHash, &a.EmailVerified, &a.CreatedAt, &a.disabled)
	a.CreatedAt = a.CreatedAt.UTC()
	return sid, a, err
}

// Logout revokes the session (and so its refresh family). refreshToken,
// when given, revokes its session too, if it belongs to the same user.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) Logout(ctx context.Context, userID, sessionID uuid.UUID, refreshToken string, c Client) error {
	now := s.now().UTC()
	return s.inTx(ctx, "logout", func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM auth.users WHERE id = $1)`, userID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return nil // the account was deleted: its sessions went with it
		}
		if _, err := tx.Exec(ctx, `UPDATE auth.sessions SET revoked_at = $3, revoke_reason = 'logout'
			WHERE user_id = $1 AND revoked_at IS NULL AND (id = $2 OR id = (
			  SELECT session_id FROM auth.refresh_tokens WHERE token_hash = $4))`,
			userID, sessionID, now, hashToken(refreshToken)); err != nil {
			return err
		}
		return s.cfg.Events.Insert(ctx, tx, lockout.Event{Type: lockout.Logout, UserID: userID, IP: c.IP, UserAgent: c.UserAgent,
			Metadata: map[string]any{"sessionId": sessionID.String()}})
	})
}

// SessionFromCookie resolves the web session cookie to its active session.
//
// Errors: UNAUTHORIZED (no such active session), SERVICE_UNAVAILABLE.
func (s *Service) SessionFromCookie(ctx context.Context, cookie string) (userID, sessionID uuid.UUID, err error) {
	if cookie == "" || len(cookie) > 256 {
		return uuid.Nil, uuid.Nil, autherr.New(autherr.Unauthorized, "no session")
	}
	err = s.cfg.Pool.QueryRow(ctx, `SELECT user_id, id FROM auth.sessions
		WHERE cookie_hash = $1 AND revoked_at IS NULL AND expires_at > $2`, hashToken(cookie), s.now()).Scan(&userID, &sessionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, uuid.Nil, autherr.New(autherr.Unauthorized, "no session")
	}
	if err != nil {
		return uuid.Nil, uuid.Nil, fmt.Errorf("manaauth: session cookie: %w", err)
	}
	return userID, sessionID, nil
}

// SessionToToken exchanges the web session cookie for a token pair in the
// same session (a new refresh token root in its family).
//
// Errors: UNAUTHORIZED, SERVICE_UNAVAILABLE.
func (s *Service) SessionToToken(ctx context.Context, cookie string) (*TokenPair, error) {
	userID, sid, err := s.SessionFromCookie(ctx, cookie)
	if err != nil {
		return nil, err
	}
	acct, err := findByID(ctx, s.cfg.Pool, userID)
	if err != nil {
		return nil, err
	}
	refresh, h, err := s.newToken()
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if _, err := s.cfg.Pool.Exec(ctx, `INSERT INTO auth.refresh_tokens (session_id, token_hash, created_at, expires_at)
		SELECT id, $2, $3, expires_at FROM auth.sessions WHERE id = $1`, sid, h, now); err != nil {
		return nil, fmt.Errorf("manaauth: session to token: %w", err)
	}
	return s.pair(acct.User, sid, refresh)
}

// revokeSessions revokes every active session of the user but keep (which
// may be uuid.Nil to revoke all), inside tx, and returns how many.
func revokeSessions(ctx context.Context, tx pgx.Tx, userID, keep uuid.UUID, reason string, now time.Time) (int, error) {
	tag, err := tx.Exec(ctx, `UPDATE auth.sessions SET revoked_at = $3, revoke_reason = $4
		WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL`, userID, keep, now, reason)
	if err != nil {
		return 0, fmt.Errorf("manaauth: revoke sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func nullAddr(a netip.Addr) any {
	if a.IsValid() {
		return a
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
