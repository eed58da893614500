package lockout

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// EventType names a security-relevant action. The set is closed: Valid
// reports whether a value is one of the constants below.
type EventType string

// Event types written to auth.security_events.
const (
	LoginSuccess           EventType = "LOGIN_SUCCESS"
	LoginFailure           EventType = "LOGIN_FAILURE"
	LoginRefused           EventType = "LOGIN_REFUSED" // right credentials, refused all the same (metadata.reason)
	AccountLocked          EventType = "ACCOUNT_LOCKED"
	LockoutCleared         EventType = "LOCKOUT_CLEARED"
	Register               EventType = "REGISTER"
	Logout                 EventType = "LOGOUT"
	EmailVerified          EventType = "EMAIL_VERIFIED"
	PasswordChanged        EventType = "PASSWORD_CHANGED"
	PasswordResetRequested EventType = "PASSWORD_RESET_REQUESTED"
	PasswordReset          EventType = "PASSWORD_RESET"
	EmailChangeRequested   EventType = "EMAIL_CHANGE_REQUESTED"
	EmailChanged           EventType = "EMAIL_CHANGED"
	ProfileUpdated         EventType = "PROFILE_UPDATED"
	AccountDeleted         EventType = "ACCOUNT_DELETED"
	TokenReuseDetected     EventType = "TOKEN_REUSE_DETECTED"
	PasskeyRegistered      EventType = "PASSKEY_REGISTERED"
	PasskeyRenamed         EventType = "PASSKEY_RENAMED"
	PasskeyDeleted         EventType = "PASSKEY_DELETED"
	PasskeyLoginSuccess    EventType = "PASSKEY_LOGIN_SUCCESS" // kept for rows already written; a passkey login records LOGIN_SUCCESS with method passkey
	PasskeyLoginFailure    EventType = "PASSKEY_LOGIN_FAILURE"
	PasskeyCloneSuspected  EventType = "PASSKEY_CLONE_SUSPECTED"
	MFARequired            EventType = "MFA_REQUIRED" // the password was right; a second factor was asked for
	MFAEnabled             EventType = "MFA_ENABLED"
	MFADisabled            EventType = "MFA_DISABLED"
	MFARecoveryCodeUsed    EventType = "MFA_RECOVERY_CODE_USED"
	SessionRevoked         EventType = "SESSION_REVOKED"
	AccountDisabled        EventType = "ACCOUNT_DISABLED"
	AccountEnabled         EventType = "ACCOUNT_ENABLED"
	APIKeyCreated          EventType = "API_KEY_CREATED"
	APIKeyRevoked          EventType = "API_KEY_REVOKED"
	VaultInitialized       EventType = "VAULT_INITIALIZED"
	VaultKeyRotated        EventType = "VAULT_KEY_ROTATED"
	VaultRecoverySet       EventType = "VAULT_RECOVERY_SET"
	VaultRecoveryCleared   EventType = "VAULT_RECOVERY_CLEARED"
	VaultZKEnabled         EventType = "VAULT_ZK_ENABLED"
	VaultZKDisabled        EventType = "VAULT_ZK_DISABLED"
	GrantIssued            EventType = "GRANT_ISSUED"
	DataExported           EventType = "DATA_EXPORTED"
)

var eventTypes = map[EventType]bool{
	LoginSuccess: true, LoginFailure: true, LoginRefused: true, AccountLocked: true, LockoutCleared: true, Register: true,
	Logout: true, EmailVerified: true, PasswordChanged: true, PasswordResetRequested: true,
	PasswordReset: true, EmailChangeRequested: true, EmailChanged: true, ProfileUpdated: true,
	AccountDeleted: true, TokenReuseDetected: true, PasskeyRegistered: true, PasskeyRenamed: true,
	PasskeyDeleted: true, PasskeyLoginSuccess: true, PasskeyLoginFailure: true, PasskeyCloneSuspected: true,
	MFARequired: true, MFAEnabled: true, MFADisabled: true, MFARecoveryCodeUsed: true, SessionRevoked: true,
	AccountDisabled: true, AccountEnabled: true, APIKeyCreated: true,
	APIKeyRevoked: true, VaultInitialized: true, VaultKeyRotated: true, VaultRecoverySet: true,
	VaultRecoveryCleared: true, VaultZKEnabled: true, VaultZKDisabled: true, GrantIssued: true,
	DataExported: true,
}

// Valid reports whether t is one of the declared event types.
func (t EventType) Valid() bool { return eventTypes[t] }

// Event is one row of auth.security_events. Every optional field left at
// its zero value is stored as NULL: UserID uuid.Nil, IP the zero Addr,
// UserAgent "", Metadata nil. Metadata must never hold secrets, tokens or
// key bytes.
type Event struct {
	Type      EventType
	UserID    uuid.UUID
	IP        netip.Addr
	UserAgent string
	Metadata  map[string]any
}

// EventsConfig configures Events.
type EventsConfig struct {
	Pool   *pgxpool.Pool // required
	Logger *slog.Logger  // nil: slog.Default()
	Now    func() time.Time
	// Registerer receives the counter mana_auth_security_event_failures_total;
	// nil leaves it unregistered (still counted, see Failures).
	Registerer prometheus.Registerer
}

// Events appends to auth.security_events.
type Events struct {
	pool     *pgxpool.Pool
	logger   *slog.Logger
	now      func() time.Time
	failures prometheus.Counter
}

// NewEvents validates cfg.
func NewEvents(cfg EventsConfig) (*Events, error) {
	if cfg.Pool == nil {
		return nil, errors.New("lockout: EventsConfig.Pool is required")
	}
	e := &Events{pool: cfg.Pool, logger: cfg.Logger, now: cfg.Now,
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mana_auth_security_event_failures_total",
			Help: "Security events that could not be written (each logged at warn with its cause).",
		})}
	if e.logger == nil {
		e.logger = slog.Default()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(e.failures); err != nil {
			return nil, fmt.Errorf("lockout: register event metrics: %w", err)
		}
	}
	return e, nil
}

// Failures is the number of events that could not be written.
func (e *Events) Failures() prometheus.Counter { return e.failures }

// Log writes ev in a transaction of its own. Writing an event never breaks
// the request that caused it: a failure is logged at warn with its cause
// and counted in mana_auth_security_event_failures_total. Use Insert where
// the event belongs to a state change and must commit with it.
func (e *Events) Log(ctx context.Context, ev Event) {
	if _, err := insertEvent(ctx, e.pool, ev, e.now()); err != nil {
		e.failures.Inc()
		e.logger.LogAttrs(ctx, slog.LevelWarn, "security event not written",
			slog.String("event_type", string(ev.Type)), slog.String("user_id", nullableUUID(ev.UserID)),
			slog.Any("err", err))
	}
}

// Append writes ev in a transaction of its own and returns its error: for
// an event that must be written before the action it records may proceed
// (DATA_EXPORTED before the first byte of an export).
func (e *Events) Append(ctx context.Context, ev Event) error {
	_, err := insertEvent(ctx, e.pool, ev, e.now())
	return err
}

// Statement returns the INSERT of ev and its arguments (every absent
// optional value NULL, the time as a time value), for a caller whose
// transaction is not a pgx.Tx — a database/sql or bun transaction over the
// same pool — so that the event still commits with the change it records.
func (e *Events) Statement(ev Event) (query string, args []any, err error) {
	args, err = eventArgs(ev, e.now())
	if err != nil {
		return "", nil, err
	}
	return insertEventSQL, args, nil
}

// Insert writes ev inside the caller's transaction, so that it commits or
// rolls back with the state change it records. Its error is the caller's to
// return.
func (e *Events) Insert(ctx context.Context, tx pgx.Tx, ev Event) error {
	_, err := insertEvent(ctx, tx, ev, e.now())
	return err
}

// SQLExecer is a database/sql transaction (or connection), such as the
// *sql.Tx a bun transaction wraps.
type SQLExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// InsertSQL is Insert for a database/sql transaction — bun's, over pgx's
// stdlib adapter on the same pool — so that an event commits with the
// change a model-shaped store made. Pass the *sql.Tx itself (a bun.Tx's
// Tx field): bun's own ExecContext would rewrite the $n placeholders. Its
// error is the caller's to return.
func (e *Events) InsertSQL(ctx context.Context, tx SQLExecer, ev Event) error {
	args, err := eventArgs(ev, e.now())
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insertEventSQL, args...); err != nil {
		return fmt.Errorf("lockout: insert %s event: %w", ev.Type, err)
	}
	return nil
}

type execer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const insertEventSQL = `INSERT INTO auth.security_events (event_type, user_id, ip_address, user_agent, metadata, created_at)
	VALUES ($1, $2, $3, $4, $5, $6)`

// eventArgs binds every absent optional value as NULL explicitly, and the
// time as a time value.
func eventArgs(ev Event, at time.Time) ([]any, error) {
	if !ev.Type.Valid() {
		return nil, fmt.Errorf("lockout: unknown event type %q", ev.Type)
	}
	var userID, ip, ua, meta any
	if ev.UserID != uuid.Nil {
		userID = ev.UserID
	}
	if ev.IP.IsValid() {
		ip = ev.IP
	}
	if ev.UserAgent != "" {
		ua = ev.UserAgent
	}
	if ev.Metadata != nil {
		b, err := json.Marshal(ev.Metadata)
		if err != nil {
			return nil, fmt.Errorf("lockout: event %s metadata: %w", ev.Type, err)
		}
		// As text: a string is JSON to pgx in every exec mode, while
		// []byte is bytea to the modes that do not ask the server for the
		// parameter types (exec, simple_protocol).
		meta = string(b)
	}
	return []any{string(ev.Type), userID, ip, ua, meta, at}, nil
}

func insertEvent(ctx context.Context, q execer, ev Event, at time.Time) (int64, error) {
	args, err := eventArgs(ev, at)
	if err != nil {
		return 0, err
	}
	var id int64
	if err := q.QueryRow(ctx, insertEventSQL+` RETURNING id`, args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("lockout: insert %s event: %w", ev.Type, err)
	}
	return id, nil
}

// Queue adds ev to b, to be written with the batch's other statements (a
// batch sent outside a transaction runs as one implicit transaction).
// Its error (an unknown type, unencodable metadata) is the caller's.
func (e *Events) Queue(b *pgx.Batch, ev Event) error {
	args, err := eventArgs(ev, e.now())
	if err != nil {
		return err
	}
	b.Queue(insertEventSQL, args...)
	return nil
}

func nullableUUID(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}
