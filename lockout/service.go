package lockout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/autherr"
)

// Method is how a login attempt authenticates.
type Method string

// Login methods stored in auth.login_attempts.method.
const (
	Password Method = "password"
	Passkey  Method = "passkey"
	// MFA is the second step of a login: a TOTP or recovery code checked
	// after the password. Its wrong codes (MFA_INVALID_CODE) count toward
	// the same lock as wrong passwords.
	MFA Method = "mfa"
)

// Policy is the lockout policy. The zero value of each field means its
// default: 5 failures within 15 minutes lock for 30 minutes.
type Policy struct {
	MaxFailures int
	Window      time.Duration
	LockFor     time.Duration
}

// DefaultPolicy is the policy of api.md.
func DefaultPolicy() Policy {
	return Policy{MaxFailures: 5, Window: 15 * time.Minute, LockFor: 30 * time.Minute}
}

// Config configures a Service.
type Config struct {
	Pool   *pgxpool.Pool // runtime role; required
	Policy Policy
	Events *Events // required: lock, success and failure events commit with the counter
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is the login gate: every credential check of every instance goes
// through it, and the counter lives in PostgreSQL.
type Service struct {
	pool   *pgxpool.Pool
	policy Policy
	events *Events
	now    func() time.Time
	logger *slog.Logger
}

// New validates cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil {
		return nil, errors.New("lockout: Config.Pool is required")
	}
	if cfg.Events == nil {
		return nil, errors.New("lockout: Config.Events is required")
	}
	p, d := cfg.Policy, DefaultPolicy()
	if p.MaxFailures == 0 {
		p.MaxFailures = d.MaxFailures
	}
	if p.Window == 0 {
		p.Window = d.Window
	}
	if p.LockFor == 0 {
		p.LockFor = d.LockFor
	}
	if p.MaxFailures < 1 || p.Window < time.Second || p.LockFor < time.Second {
		return nil, fmt.Errorf("lockout: invalid policy %+v: MaxFailures ≥ 1, Window and LockFor ≥ 1s", p)
	}
	s := &Service{pool: cfg.Pool, policy: p, events: cfg.Events, now: cfg.Now, logger: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return s, nil
}

// Policy is the policy in force.
func (s *Service) Policy() Policy { return s.policy }

// Attempt describes one credential check. Email is canonicalised (trimmed,
// lower-cased) by the gate; IP and UserAgent are stored as NULL when zero.
type Attempt struct {
	Email     string
	Method    Method
	IP        netip.Addr
	UserAgent string
}

// Canonical is the lockout key of an email address: trimmed and lower-cased,
// so "Alice@X.com " and "alice@x.com" share one counter.
func Canonical(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Ticket is the admission of one attempt to a credential check; Finish
// must be called with the outcome.
type Ticket struct {
	s        *Service
	a        Attempt
	at       time.Time
	engaged  bool // this attempt's failure completes the lock
	finished bool
}

// gateSQL admits or denies one attempt in a single statement. The upsert
// takes the row lock of the email's counter, and ON CONFLICT DO UPDATE
// evaluates on the latest committed row, so concurrent attempts on every
// instance are serialised and counted exactly: the attempt that brings the
// failures inside the window to the maximum sets locked_until itself, and
// every later one is denied — at most MaxFailures attempts are ever admitted
// per window (the CVE-2024-4629 class of bug is the check and the increment
// being two statements).
//
// An admitted attempt counts as a failure from the start (increment, then
// verify); Finish keeps it for a credential failure, clears the counter on
// success and takes it back for any other outcome. While locked, nothing
// changes but the denied flag: failures while locked do not extend the lock.
// Times are bound values ($2 now, $3 window and $5 lock in seconds), never
// formatted text.
const gateSQL = `
INSERT INTO auth.lockouts AS l (email, failures, locked_until, denied, updated_at)
VALUES ($1, ARRAY[$2::timestamptz],
        CASE WHEN $4::int <= 1 THEN $2::timestamptz + make_interval(secs => $5::float8) END, false, $2)
ON CONFLICT (email) DO UPDATE SET
  denied = coalesce(l.locked_until > $2, false),
  failures = CASE
    WHEN l.locked_until > $2 THEN l.failures
    WHEN l.locked_until IS NOT NULL THEN ARRAY[$2::timestamptz]
    ELSE array_append(ARRAY(SELECT f FROM unnest(l.failures) f
                            WHERE f > $2 - make_interval(secs => $3::float8) ORDER BY f), $2::timestamptz)
  END,
  locked_until = CASE
    WHEN l.locked_until > $2 THEN l.locked_until
    WHEN l.locked_until IS NOT NULL THEN
      CASE WHEN $4 <= 1 THEN $2 + make_interval(secs => $5::float8) END
    WHEN (SELECT count(*) FROM unnest(l.failures) f WHERE f > $2 - make_interval(secs => $3::float8)) + 1 >= $4
      THEN $2 + make_interval(secs => $5::float8)
  END,
  updated_at = $2
RETURNING denied, locked_until`

// Begin admits one attempt or refuses it.
//
// Errors: ACCOUNT_LOCKED with RemainingSeconds while the lock holds (the
// attempt is recorded in auth.login_attempts as unsuccessful, whatever the
// password); SERVICE_UNAVAILABLE when the database cannot be reached — the
// gate fails closed and records nothing then.
func (s *Service) Begin(ctx context.Context, a Attempt) (*Ticket, error) {
	a.Email = Canonical(a.Email)
	if a.Email == "" {
		return nil, autherr.New(autherr.ValidationFailed, "email is required")
	}
	if a.Method != Password && a.Method != Passkey && a.Method != MFA {
		return nil, fmt.Errorf("lockout: unknown method %q", a.Method)
	}
	now := s.now().UTC()
	var denied bool
	var lockedUntil *time.Time
	// One statement, one round trip: the admission, and for a denied
	// attempt its row in auth.login_attempts, commit together.
	err := s.pool.QueryRow(ctx, `WITH gate AS (`+gateSQL+`),
		denied_attempt AS (
		  INSERT INTO auth.login_attempts (email, ip_address, user_agent, successful, method, attempted_at)
		  SELECT $1, $6, $7, false, $8, $2 FROM gate WHERE gate.denied)
		SELECT denied, locked_until FROM gate`,
		a.Email, now, s.policy.Window.Seconds(), s.policy.MaxFailures, s.policy.LockFor.Seconds(),
		nullAddr(a.IP), nullString(a.UserAgent), string(a.Method)).Scan(&denied, &lockedUntil)
	if err != nil {
		return nil, fmt.Errorf("lockout: gate: %w", err)
	}
	if denied {
		return nil, lockedError(lockedUntil.Sub(now))
	}
	return &Ticket{s: s, a: a, at: now, engaged: lockedUntil != nil}, nil
}

// lockedError is the 429 ACCOUNT_LOCKED answer, with the seconds left
// rounded up so that a client waiting that long finds the lock gone.
func lockedError(remaining time.Duration) *autherr.Error {
	e := autherr.New(autherr.AccountLocked, "too many failed attempts; try again later")
	e.RemainingSeconds = max(1, int(math.Ceil(remaining.Seconds())))
	return e
}

// Finish records the outcome of the credential check admitted by Begin,
// once; later calls do nothing.
//
//   - outcome nil: the credentials were right. The counter is reset (a
//     success clears earlier failures, and a lock that concurrent failures
//     completed while this check ran) and LOGIN_SUCCESS is recorded.
//   - autherr.CountsTowardLockout(outcome) — INVALID_CREDENTIALS and nothing
//     else: the failure stays counted and is recorded with LOGIN_FAILURE;
//     when it completed the lock, ACCOUNT_LOCKED is recorded in the same
//     transaction.
//   - anything else (the database, a hashing limit, a bug): the admission is
//     taken back and nothing is recorded — infrastructure trouble never
//     counts against the user.
//
// userID is the account the email belongs to, uuid.Nil when there is none.
// Finish returns an error when it could not record (SERVICE_UNAVAILABLE);
// the caller answers with it.
func (t *Ticket) Finish(ctx context.Context, userID uuid.UUID, outcome error) error {
	if t == nil || t.finished {
		return nil
	}
	t.finished = true
	switch {
	case outcome == nil:
		return t.s.succeed(ctx, t, userID)
	case autherr.CountsTowardLockout(outcome):
		return t.s.fail(ctx, t, userID)
	default:
		return t.s.release(ctx, t)
	}
}

func (s *Service) succeed(ctx context.Context, t *Ticket, userID uuid.UUID) error {
	return s.inTx(ctx, "record success", func(tx pgx.Tx) error { return s.succeedTx(ctx, tx, t, userID) })
}

func (s *Service) succeedTx(ctx context.Context, tx pgx.Tx, t *Ticket, userID uuid.UUID) error {
	b := &pgx.Batch{}
	if err := s.queueSuccess(b, t, userID); err != nil {
		return err
	}
	return tx.SendBatch(ctx, b).Close()
}

// queueSuccess queues what a success records: the counter reset, the
// attempt row and LOGIN_SUCCESS.
func (s *Service) queueSuccess(b *pgx.Batch, t *Ticket, userID uuid.UUID) error {
	b.Queue(`UPDATE auth.lockouts SET failures = '{}', locked_until = NULL, denied = false, updated_at = $2
		WHERE email = $1`, t.a.Email, t.at)
	b.Queue(insertAttemptSQL, t.a.Email, nullAddr(t.a.IP), nullString(t.a.UserAgent), true, string(t.a.Method), t.at)
	// A login is a login whatever proved it (api.md: LOGIN_SUCCESS with
	// its method).
	return s.events.Queue(b, Event{Type: LoginSuccess, UserID: userID, IP: t.a.IP, UserAgent: t.a.UserAgent,
		Metadata: map[string]any{"method": string(t.a.Method)}})
}

// SucceedTx records the success of the check inside tx — the transaction
// that also starts the session, say — so that both commit together. When
// tx commits the ticket is done (do not call Finish); when it fails, call
// Finish with its error, which takes the admission back.
func (t *Ticket) SucceedTx(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	if t == nil || t.finished {
		return nil
	}
	return t.s.succeedTx(ctx, tx, t, userID)
}

// QueueSuccess adds the recording of a successful check to b, the batch
// that also starts the session, say: sent outside a transaction, a batch
// runs as one implicit transaction, so the success and what it grants
// commit together, in one round trip. When the batch succeeds the ticket is
// done (do not call Finish); when it fails, call Finish with its error,
// which takes the admission back.
func (t *Ticket) QueueSuccess(b *pgx.Batch, userID uuid.UUID) error {
	if t == nil || t.finished {
		return nil
	}
	return t.s.queueSuccess(b, t, userID)
}

func (s *Service) fail(ctx context.Context, t *Ticket, userID uuid.UUID) error {
	return s.inTx(ctx, "record failure", func(tx pgx.Tx) error {
		if err := insertAttempt(ctx, tx, t.a, false, t.at); err != nil {
			return err
		}
		typ := LoginFailure
		if t.a.Method == Passkey {
			typ = PasskeyLoginFailure
		}
		// The email is not stored in events of unknown accounts: user id
		// NULL and no address, so the log does not collect typed-in guesses.
		if err := s.events.Insert(ctx, tx, Event{Type: typ, UserID: userID, IP: t.a.IP, UserAgent: t.a.UserAgent,
			Metadata: map[string]any{"method": string(t.a.Method)}}); err != nil {
			return err
		}
		if !t.engaged {
			return nil
		}
		var until *time.Time
		if err := tx.QueryRow(ctx, `SELECT locked_until FROM auth.lockouts WHERE email = $1`, t.a.Email).Scan(&until); err != nil {
			return err
		}
		if until == nil {
			return nil // a concurrent success cleared it meanwhile
		}
		return s.events.Insert(ctx, tx, Event{Type: AccountLocked, UserID: userID, IP: t.a.IP, UserAgent: t.a.UserAgent,
			Metadata: map[string]any{"lockedUntil": until.UTC().Format(time.RFC3339), "maxFailures": s.policy.MaxFailures,
				"windowSeconds": int(s.policy.Window.Seconds())}})
	})
}

// release takes back an admission whose check ended in neither success nor
// a credential failure: one occurrence of its time leaves the window, and a
// lock this admission provisionally set is lifted if the failures left are
// below the maximum.
func (s *Service) release(ctx context.Context, t *Ticket) error {
	if _, err := s.pool.Exec(ctx, releaseSQL, t.a.Email, t.at, t.engaged, s.policy.MaxFailures); err != nil {
		// The admission stays counted, which errs on the side of the lock.
		s.logger.Warn("lockout: admission not released; it counts as a failure until the window passes",
			"err", err)
		return fmt.Errorf("lockout: release: %w", err)
	}
	return nil
}

// releaseSQL takes one admission back. The SET expressions read
// l.failures, which PostgreSQL re-reads from the latest row version after
// taking the row lock, so a concurrent admission is never lost.
const releaseSQL = `
	UPDATE auth.lockouts l SET
	  failures = coalesce((SELECT array_agg(f ORDER BY f) FROM (
	                         SELECT f, row_number() OVER (PARTITION BY f) AS n FROM unnest(l.failures) f) x
	                       WHERE NOT (f = $2 AND n = 1)), '{}'),
	  locked_until = CASE
	    WHEN $3 AND cardinality(l.failures) - (CASE WHEN $2 = ANY (l.failures) THEN 1 ELSE 0 END) < $4 THEN NULL
	    ELSE l.locked_until END
	WHERE l.email = $1`

// Refuse records an attempt whose credentials were right but that is
// refused all the same — reason says why ("email_not_verified",
// "account_disabled"): a row in auth.login_attempts with successful false
// and LOGIN_REFUSED with the reason, in one transaction that also takes
// the admission back, so the counter stays as it was before the attempt
// (neither a failure counted against the user nor a success that clears
// earlier failures). Later calls of Refuse or Finish do nothing.
//
// Errors: SERVICE_UNAVAILABLE when it could not record; the caller
// answers with it.
func (t *Ticket) Refuse(ctx context.Context, userID uuid.UUID, reason string) error {
	return t.hold(ctx, userID, LoginRefused, map[string]any{"method": string(t.a.Method), "reason": reason})
}

// Challenge records a check whose credentials were right but that needs a
// second factor before it is a login: like Refuse, the admission is taken
// back (the counter stays as it was: the password being right does not
// clear earlier failures, so wrong codes and wrong passwords share one
// budget), the attempt is a row in auth.login_attempts with successful
// false, and MFA_REQUIRED is recorded. The second step passes the gate on
// its own (Method MFA). Later calls of Challenge, Refuse or Finish do
// nothing.
//
// Errors: SERVICE_UNAVAILABLE when it could not record.
func (t *Ticket) Challenge(ctx context.Context, userID uuid.UUID) error {
	return t.hold(ctx, userID, MFARequired, map[string]any{"method": string(t.a.Method)})
}

// Reject records a check whose credential did not verify but whose
// failure must not count toward the lock: a passkey assertion that failed.
// A signature cannot be guessed the way a password can, and counting such
// failures here would let anyone who knows a credential id lock its
// owner's account (the passkey package limits them per credential
// instead). Like Refuse, the admission is taken back; the attempt is a row
// in auth.login_attempts with successful false, and the failure event of
// its method is recorded (PASSKEY_LOGIN_FAILURE for a passkey,
// LOGIN_FAILURE otherwise) with metadata, which must hold no secret, plus
// the method. Later calls of Reject, Refuse, Challenge or Finish do
// nothing.
//
// Errors: SERVICE_UNAVAILABLE when it could not record.
func (t *Ticket) Reject(ctx context.Context, userID uuid.UUID, metadata map[string]any) error {
	if t == nil {
		return nil
	}
	typ := LoginFailure
	if t.a.Method == Passkey {
		typ = PasskeyLoginFailure
	}
	m := map[string]any{"method": string(t.a.Method)}
	for k, v := range metadata {
		if k != "method" {
			m[k] = v
		}
	}
	return t.hold(ctx, userID, typ, m)
}

func (t *Ticket) hold(ctx context.Context, userID uuid.UUID, typ EventType, metadata map[string]any) error {
	if t == nil || t.finished {
		return nil
	}
	t.finished = true
	s := t.s
	return s.inTx(ctx, "record "+string(typ), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, releaseSQL, t.a.Email, t.at, t.engaged, s.policy.MaxFailures); err != nil {
			return err
		}
		if err := insertAttempt(ctx, tx, t.a, false, t.at); err != nil {
			return err
		}
		return s.events.Insert(ctx, tx, Event{Type: typ, UserID: userID, IP: t.a.IP, UserAgent: t.a.UserAgent,
			Metadata: metadata})
	})
}

// Clear lifts the lock and forgets the failures of email. The core calls it
// when a password reset completes, so an attacker who knows only an address
// can lock its owner out for at most one window.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) Clear(ctx context.Context, email string, userID uuid.UUID) error {
	email = Canonical(email)
	return s.inTx(ctx, "clear", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE auth.lockouts SET failures = '{}', locked_until = NULL, denied = false, updated_at = $2
			WHERE email = $1 AND (locked_until IS NOT NULL OR cardinality(failures) > 0)`, email, s.now().UTC())
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return s.events.Insert(ctx, tx, Event{Type: LockoutCleared, UserID: userID})
	})
}

// Status tells whether email is locked now and for how long.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) Status(ctx context.Context, email string) (locked bool, remaining time.Duration, err error) {
	var until *time.Time
	err = s.pool.QueryRow(ctx, `SELECT locked_until FROM auth.lockouts WHERE email = $1`, Canonical(email)).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("lockout: status: %w", err)
	}
	now := s.now()
	if until == nil || !until.After(now) {
		return false, 0, nil
	}
	return true, until.Sub(now), nil
}

const insertAttemptSQL = `INSERT INTO auth.login_attempts (email, ip_address, user_agent, successful, method, attempted_at)
	VALUES ($1, $2, $3, $4, $5, $6)`

func insertAttempt(ctx context.Context, tx pgx.Tx, a Attempt, ok bool, at time.Time) error {
	if _, err := tx.Exec(ctx, insertAttemptSQL, a.Email, nullAddr(a.IP), nullString(a.UserAgent), ok, string(a.Method), at); err != nil {
		return fmt.Errorf("lockout: record attempt: %w", err)
	}
	return nil
}

func (s *Service) inTx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("lockout: %s: %w", what, err)
	}
	defer s.rollback(ctx, tx)
	if err := fn(tx); err != nil {
		return fmt.Errorf("lockout: %s: %w", what, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("lockout: %s: commit: %w", what, err)
	}
	return nil
}

// rollback ends a transaction not committed; after Commit it does nothing.
// Its own failure only means the connection broke, which the statement
// error already reports; it is logged, not returned.
func (s *Service) rollback(ctx context.Context, tx pgx.Tx) {
	if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		s.logger.Warn("lockout: rollback", "err", err)
	}
}

// nullAddr and nullString bind absent values as NULL explicitly.
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
