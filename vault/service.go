package vault

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
)

// RecoveryFormatVersion is the recovery_format_version stamped on a
// recovery wrap set through SetRecoveryWrap.
const RecoveryFormatVersion = 1

// Action names an audited vault operation (auth.encryption_vault_audit.action).
type Action string

// The audited actions. Status is deliberately not audited.
const (
	ActionInit          Action = "init"
	ActionKey           Action = "key"
	ActionRotate        Action = "rotate"
	ActionRecoverySet   Action = "recovery_set"
	ActionRecoveryClear Action = "recovery_clear"
	ActionZKEnable      Action = "zk_enable"
	ActionZKDisable     Action = "zk_disable"
	ActionZeroKnowledge Action = "zero_knowledge" // a zero-knowledge request refused before enable/disable was known
	ActionRewrap        Action = "rewrap"
)

// Config configures a Service.
type Config struct {
	Pool *pgxpool.Pool // the runtime role (row-level security applies); required
	// Keys wraps the master keys: a *KeyRing (several KEKs, for rotation)
	// or a KMS stand-in. Either Keys or KEK is required.
	Keys KeyWrapper
	// KEK, when Keys is nil, is the one 32-byte key-encryption key, with
	// the id "1" (what MANA_AUTH_KEK gives the reference server).
	KEK []byte
	// Logger receives unwrap failures and audit rows that could not be
	// written; nil: slog.Default().
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
	Rand   io.Reader        // master keys; nil: crypto/rand
	// Registerer receives mana_auth_vault_audit_failures_total and
	// mana_auth_vault_unwrap_failures_total; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Service is the per-user encryption vault.
type Service struct {
	pool          *pgxpool.Pool
	keys          KeyWrapper
	logger        *slog.Logger
	now           func() time.Time
	rand          io.Reader
	auditFailures prometheus.Counter
	unwrapFails   prometheus.Counter
	audit         *auditLog // key reads' audit rows, with group commit
}

// New validates cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil {
		return nil, errors.New("vault: Config.Pool is required")
	}
	switch {
	case cfg.Keys != nil && cfg.KEK != nil:
		return nil, errors.New("vault: set Config.Keys or Config.KEK, not both")
	case cfg.Keys == nil && cfg.KEK == nil:
		return nil, errors.New("vault: Config.Keys or Config.KEK is required")
	case cfg.Keys == nil:
		ring, err := NewKeyRing(KEK{ID: "1", Key: cfg.KEK})
		if err != nil {
			return nil, err
		}
		cfg.Keys = ring
	}
	if !ValidKEKID(cfg.Keys.ActiveKEKID()) {
		return nil, fmt.Errorf("vault: active KEK id %q is not valid", cfg.Keys.ActiveKEKID())
	}
	s := &Service{pool: cfg.Pool, keys: cfg.Keys, logger: cfg.Logger, now: cfg.Now, rand: cfg.Rand, audit: &auditLog{pool: cfg.Pool},
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mana_auth_vault_audit_failures_total",
			Help: "Vault audit rows of failed actions that could not be written (each logged with its cause).",
		}),
		unwrapFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mana_auth_vault_unwrap_failures_total",
			Help: "Stored master keys that could not be unwrapped (each logged with user and KEK id).",
		}),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.auditFailures, s.unwrapFails} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("vault: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// AuditFailures counts audit rows of failed actions that were not written.
func (s *Service) AuditFailures() prometheus.Counter { return s.auditFailures }

// Client describes the caller of an action, for the audit row. Zero values
// are stored as NULL.
type Client struct {
	IP        netip.Addr
	UserAgent string
}

// Key is the answer of Init, Key and Rotate: the standard shape
// {masterKey, formatVersion, kekId} or, in zero-knowledge mode,
// {requiresRecoveryCode: true, recoveryWrappedMk, recoveryIv,
// formatVersion}. Byte fields encode as standard base64. Call Wipe when the
// key has been sent.
type Key struct {
	MasterKey            []byte `json:"masterKey,omitempty"`
	FormatVersion        int    `json:"formatVersion"`
	KEKID                string `json:"kekId,omitempty"`
	RequiresRecoveryCode bool   `json:"requiresRecoveryCode,omitempty"`
	RecoveryWrappedMK    []byte `json:"recoveryWrappedMk,omitempty"`
	RecoveryIV           []byte `json:"recoveryIv,omitempty"`
}

// Wipe zeroes the master key.
func (k *Key) Wipe() { clear(k.MasterKey) }

// Status is the answer of Status and of the recovery and zero-knowledge
// operations. RecoverySetAt is null when there is no recovery wrap.
type Status struct {
	VaultExists     bool       `json:"vaultExists"`
	HasRecoveryWrap bool       `json:"hasRecoveryWrap"`
	ZeroKnowledge   bool       `json:"zeroKnowledge"`
	RecoverySetAt   *time.Time `json:"recoverySetAt"`
}

// row is a locked or read auth.encryption_vaults row.
type row struct {
	wrapped         Wrapped
	hasServerWrap   bool
	recoveryWrapped []byte
	recoveryIV      []byte
	recoveryVersion *int32
	recoverySetAt   *time.Time
	zeroKnowledge   bool
	keyCheck        []byte // zero-knowledge mode only; nil for rows switched before migration 0002
}

func (r *row) status() Status {
	st := Status{VaultExists: true, HasRecoveryWrap: r.recoveryWrapped != nil, ZeroKnowledge: r.zeroKnowledge}
	if r.recoverySetAt != nil {
		t := r.recoverySetAt.UTC()
		st.RecoverySetAt = &t
	}
	return st
}

const selectRow = `SELECT wrapped_mk, wrap_iv, coalesce(kek_id, ''), format_version, recovery_wrapped_mk, recovery_iv,
	recovery_format_version, recovery_set_at, zero_knowledge, key_check FROM auth.encryption_vaults WHERE user_id = $1`

// load reads the caller's row (nil when there is none); lock takes the row
// lock for an update.
func load(ctx context.Context, tx pgx.Tx, userID uuid.UUID, lock bool) (*row, error) {
	q := selectRow
	if lock {
		q += " FOR UPDATE"
	}
	r, err := scanRow(tx.QueryRow(ctx, q, userID))
	if errors.Is(err, errNoRow) {
		return nil, nil
	}
	return r, err
}

// errNoRow is scanRow's answer when the caller has no vault.
var errNoRow = errors.New("vault: no vault row")

// scanRow scans a selectRow result.
func scanRow(q pgx.Row) (*row, error) {
	var r row
	var version int32
	err := q.Scan(&r.wrapped.Ciphertext, &r.wrapped.IV, &r.wrapped.KEKID, &version,
		&r.recoveryWrapped, &r.recoveryIV, &r.recoveryVersion, &r.recoverySetAt, &r.zeroKnowledge, &r.keyCheck)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoRow
	}
	if err != nil {
		return nil, fmt.Errorf("vault: read vault: %w", err)
	}
	r.wrapped.FormatVersion = int(version)
	r.hasServerWrap = r.wrapped.Ciphertext != nil
	return &r, nil
}

// ErrKeyMismatch is the cause (errors.Is) of the VALIDATION_FAILED that
// DisableZeroKnowledge answers when the key sent does not match the key
// check value stored when zero-knowledge mode was switched on.
var ErrKeyMismatch = errors.New("vault: the master key does not match the key of this vault")

var (
	errNotFound       = autherr.New(autherr.VaultNotFound, "")
	errZKActive       = autherr.New(autherr.ZKActive, "")
	errZKRotate       = autherr.New(autherr.ZKRotateForbidden, "")
	errRecoveryNeeded = autherr.New(autherr.RecoveryWrapMissing, "")
)

// audit is one row of auth.encryption_vault_audit.
type audit struct {
	action  Action
	client  Client
	status  int // 0: NULL
	context map[string]any
}

func (s *Service) insertAudit(ctx context.Context, tx pgx.Tx, userID uuid.UUID, a audit) error {
	args, err := auditArgs(userID, a, s.now())
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertAuditSQL, args...); err != nil {
		return fmt.Errorf("vault: write %s audit row: %w", a.action, err)
	}
	return nil
}

// do runs fn for userID in a row-level-security transaction; on success the
// audit row fn describes commits with the change. On failure the change
// rolls back and an audit row with the failure's status and code is written
// in a transaction of its own; if that fails too, it is logged and counted,
// and the action's own error is returned.
func (s *Service) do(ctx context.Context, userID uuid.UUID, action Action, c Client, fn func(tx pgx.Tx) (map[string]any, error)) error {
	if userID == uuid.Nil {
		return ErrNoUser
	}
	err := RunAsUser(ctx, s.pool, userID, func(tx pgx.Tx) error {
		auditCtx, err := fn(tx)
		if err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, userID, audit{action: action, client: c, status: http.StatusOK, context: auditCtx})
	})
	if err != nil {
		s.auditFailure(ctx, userID, action, c, err)
	}
	return err
}

// auditFailure records a failed action. It runs even when ctx is done.
func (s *Service) auditFailure(ctx context.Context, userID uuid.UUID, action Action, c Client, cause error) {
	if userID == uuid.Nil {
		return
	}
	e := autherr.Classify(cause)
	auditCtx := map[string]any{"code": string(e.Code)}
	if errors.Is(cause, ErrKeyMismatch) {
		auditCtx["keyMismatch"] = true
	}
	ctx = context.WithoutCancel(ctx)
	err := RunAsUser(ctx, s.pool, userID, func(tx pgx.Tx) error {
		return s.insertAudit(ctx, tx, userID, audit{action: action, client: c, status: e.Status(), context: auditCtx})
	})
	if err != nil {
		s.auditFailures.Inc()
		s.logger.LogAttrs(ctx, slog.LevelWarn, "vault: audit row of a failed action not written",
			slog.String("action", string(action)), slog.String("user_id", userID.String()),
			slog.String("action_code", string(e.Code)), slog.Any("err", err))
	}
}

// unwrap opens r's server wrap; a failure is logged with the ids (never
// key bytes) and counted. A KEK id the ring does not hold is
// SERVICE_UNAVAILABLE (configuration); a wrap that does not open under a
// KEK the ring holds is INTERNAL (the row is damaged or was tampered with).
func (s *Service) unwrap(ctx context.Context, userID uuid.UUID, w Wrapped) ([]byte, error) {
	if h, ok := s.keys.(KEKHolder); ok && !h.Has(w.KEKID) {
		// Configuration, not data: the KEK this row needs is missing from
		// the ring (MANA_AUTH_KEK replaced without keeping the old key).
		// Every such vault answers 503 until the key is back; /readyz says
		// so too (UnknownKEKs).
		s.unwrapFails.Inc()
		s.logger.LogAttrs(ctx, slog.LevelError, "vault: stored master key is wrapped under a KEK the key ring does not hold",
			slog.String("user_id", userID.String()), slog.String("kek_id", w.KEKID),
			slog.String("hint", "add the old KEK to "+EnvKEKs+" (new first), then run rewrap"))
		return nil, autherr.Wrap(autherr.ServiceUnavailable, fmt.Errorf("vault: KEK %q is not in the key ring", w.KEKID), "")
	}
	mk, err := Unwrap(ctx, s.keys, userID, w)
	if err != nil {
		s.unwrapFails.Inc()
		s.logger.LogAttrs(ctx, slog.LevelError, "vault: stored master key could not be unwrapped",
			slog.String("user_id", userID.String()), slog.String("kek_id", w.KEKID),
			slog.Int("format_version", w.FormatVersion), slog.Int("iv_len", len(w.IV)))
		return nil, autherr.Wrap(autherr.Internal, err, "")
	}
	return mk, nil
}

func (s *Service) newMasterKey() ([]byte, error) {
	mk := make([]byte, MasterKeySize)
	if _, err := io.ReadFull(s.rand, mk); err != nil {
		return nil, fmt.Errorf("vault: random master key: %w", err)
	}
	return mk, nil
}

// keyOf answers a row: the ZK shape, or the unwrapped key.
func (s *Service) keyOf(ctx context.Context, userID uuid.UUID, r *row) (Key, map[string]any, error) {
	if r.zeroKnowledge {
		v := RecoveryFormatVersion
		if r.recoveryVersion != nil {
			v = int(*r.recoveryVersion)
		}
		return Key{RequiresRecoveryCode: true, RecoveryWrappedMK: r.recoveryWrapped, RecoveryIV: r.recoveryIV,
			FormatVersion: v}, map[string]any{"zeroKnowledge": true}, nil
	}
	mk, err := s.unwrap(ctx, userID, r.wrapped)
	if err != nil {
		return Key{}, nil, err
	}
	return Key{MasterKey: mk, FormatVersion: r.wrapped.FormatVersion, KEKID: r.wrapped.KEKID},
		map[string]any{"kekId": r.wrapped.KEKID}, nil
}

// Init creates the caller's vault with a fresh master key, wrapped under
// the active KEK, and returns the key. It is idempotent: with a vault in
// place it returns the existing key (or the zero-knowledge shape).
// Errors: UNAUTHORIZED (nil user), CONFLICT (no such user), INTERNAL,
// SERVICE_UNAVAILABLE.
func (s *Service) Init(ctx context.Context, userID uuid.UUID, c Client) (Key, error) {
	var key Key
	err := s.do(ctx, userID, ActionInit, c, func(tx pgx.Tx) (map[string]any, error) {
		mk, err := s.newMasterKey()
		if err != nil {
			return nil, err
		}
		w, err := Wrap(ctx, s.keys, userID, mk)
		if err != nil {
			clear(mk)
			return nil, err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO auth.encryption_vaults
			(user_id, wrapped_mk, wrap_iv, kek_id, format_version, created_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (user_id) DO NOTHING`, userID, w.Ciphertext, w.IV, w.KEKID, w.FormatVersion, s.now())
		if err != nil {
			clear(mk)
			return nil, fmt.Errorf("vault: create vault: %w", err)
		}
		if tag.RowsAffected() == 1 {
			key = Key{MasterKey: mk, FormatVersion: w.FormatVersion, KEKID: w.KEKID}
			return map[string]any{"created": true, "kekId": w.KEKID}, nil
		}
		clear(mk)
		r, err := load(ctx, tx, userID, false)
		if err != nil {
			return nil, err
		}
		if r == nil { // unreachable: the conflict was on this user's row
			return nil, errors.New("vault: init: conflicting row not visible")
		}
		var auditCtx map[string]any
		key, auditCtx, err = s.keyOf(ctx, userID, r)
		if err != nil {
			return nil, err
		}
		auditCtx["created"] = false
		return auditCtx, nil
	})
	if err != nil {
		key.Wipe()
		return Key{}, err
	}
	return key, nil
}

// Key returns the caller's master key, or the zero-knowledge shape. The
// row is read in one round trip and the audit row is committed together
// with those of concurrent key reads (group commit); Key returns the key
// only once its audit row has committed, and an error — never the key —
// when it cannot be written.
// Errors: VAULT_NOT_FOUND before Init, INTERNAL (also when the stored key
// does not unwrap), SERVICE_UNAVAILABLE.
func (s *Service) Key(ctx context.Context, userID uuid.UUID, c Client) (Key, error) {
	if userID == uuid.Nil {
		return Key{}, ErrNoUser
	}
	r, err := readRow(ctx, s.pool, userID)
	if err == nil && r == nil {
		err = errNotFound
	}
	var key Key
	var auditCtx map[string]any
	if err == nil {
		key, auditCtx, err = s.keyOf(ctx, userID, r)
	}
	if err == nil {
		err = s.audit.append(ctx, userID, audit{action: ActionKey, client: c, status: http.StatusOK, context: auditCtx}, s.now())
	}
	if err != nil {
		key.Wipe()
		s.auditFailure(ctx, userID, ActionKey, c, err)
		return Key{}, err
	}
	return key, nil
}

// Rotate replaces the caller's master key with a fresh one and wipes any
// recovery wrap (it wrapped the old key). Errors: VAULT_NOT_FOUND,
// ZK_ROTATE_FORBIDDEN in zero-knowledge mode, INTERNAL,
// SERVICE_UNAVAILABLE.
func (s *Service) Rotate(ctx context.Context, userID uuid.UUID, c Client) (Key, error) {
	var key Key
	err := s.do(ctx, userID, ActionRotate, c, func(tx pgx.Tx) (map[string]any, error) {
		r, err := load(ctx, tx, userID, true)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, errNotFound
		}
		if r.zeroKnowledge {
			return nil, errZKRotate
		}
		mk, err := s.newMasterKey()
		if err != nil {
			return nil, err
		}
		w, err := Wrap(ctx, s.keys, userID, mk)
		if err != nil {
			clear(mk)
			return nil, err
		}
		key = Key{MasterKey: mk, FormatVersion: w.FormatVersion, KEKID: w.KEKID}
		if _, err := tx.Exec(ctx, `UPDATE auth.encryption_vaults SET wrapped_mk = $2, wrap_iv = $3, kek_id = $4,
			format_version = $5, rotated_at = $6, recovery_wrapped_mk = NULL, recovery_iv = NULL,
			recovery_format_version = NULL, recovery_set_at = NULL WHERE user_id = $1`,
			userID, w.Ciphertext, w.IV, w.KEKID, w.FormatVersion, s.now()); err != nil {
			return nil, fmt.Errorf("vault: rotate: %w", err)
		}
		return map[string]any{"kekId": w.KEKID, "recoveryWrapCleared": r.recoveryWrapped != nil}, nil
	})
	if err != nil {
		key.Wipe()
		return Key{}, err
	}
	return key, nil
}

// Status reports the caller's vault state; it writes no audit row.
// Errors: UNAUTHORIZED (nil user), SERVICE_UNAVAILABLE.
func (s *Service) Status(ctx context.Context, userID uuid.UUID) (Status, error) {
	r, err := readRow(ctx, s.pool, userID)
	if err != nil || r == nil {
		return Status{}, err
	}
	return r.status(), nil
}

// SetRecoveryWrap stores the master key wrapped on the client under the
// user's recovery code (opaque to the server): a 12-byte IV and 48 to 1024
// bytes of ciphertext. It replaces an earlier one, in zero-knowledge mode
// too. Errors: VALIDATION_FAILED, VAULT_NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *Service) SetRecoveryWrap(ctx context.Context, userID uuid.UUID, wrappedMK, iv []byte, c Client) (Status, error) {
	var st Status
	err := s.do(ctx, userID, ActionRecoverySet, c, func(tx pgx.Tx) (map[string]any, error) {
		if err := validateRecovery(wrappedMK, iv); err != nil {
			return nil, err
		}
		r, err := load(ctx, tx, userID, true)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, errNotFound
		}
		now := s.now()
		if _, err := tx.Exec(ctx, `UPDATE auth.encryption_vaults SET recovery_wrapped_mk = $2, recovery_iv = $3,
			recovery_format_version = $4, recovery_set_at = $5 WHERE user_id = $1`,
			userID, wrappedMK, iv, RecoveryFormatVersion, now); err != nil {
			return nil, fmt.Errorf("vault: set recovery wrap: %w", err)
		}
		r.recoveryWrapped, r.recoveryIV, r.recoverySetAt = wrappedMK, iv, &now
		st = r.status()
		return map[string]any{"replaced": r.recoveryVersion != nil}, nil
	})
	return st, err
}

func validateRecovery(wrappedMK, iv []byte) error {
	bad := map[string]string{}
	if len(wrappedMK) < MasterKeySize+16 || len(wrappedMK) > 1024 {
		bad["recoveryWrappedMk"] = "must be base64 of 48 to 1024 bytes"
	}
	if len(iv) != IVSize {
		bad["recoveryIv"] = "must be base64 of exactly 12 bytes"
	}
	if len(bad) > 0 {
		return invalid(bad)
	}
	return nil
}

// invalid is VALIDATION_FAILED with details.fields (the shape web.Invalid
// gives; vault does not import web outside the handler).
func invalid(fields map[string]string) error {
	return &autherr.Error{Code: autherr.ValidationFailed, Message: "request validation failed",
		Details: map[string]any{"fields": fields}}
}

// ClearRecoveryWrap removes the recovery wrap (a no-op without one).
// Errors: VAULT_NOT_FOUND, ZK_ACTIVE (it is the only copy of the key),
// SERVICE_UNAVAILABLE.
func (s *Service) ClearRecoveryWrap(ctx context.Context, userID uuid.UUID, c Client) (Status, error) {
	var st Status
	err := s.do(ctx, userID, ActionRecoveryClear, c, func(tx pgx.Tx) (map[string]any, error) {
		r, err := load(ctx, tx, userID, true)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, errNotFound
		}
		if r.zeroKnowledge {
			return nil, errZKActive
		}
		had := r.recoveryWrapped != nil
		if had {
			if _, err := tx.Exec(ctx, `UPDATE auth.encryption_vaults SET recovery_wrapped_mk = NULL, recovery_iv = NULL,
				recovery_format_version = NULL, recovery_set_at = NULL WHERE user_id = $1`, userID); err != nil {
				return nil, fmt.Errorf("vault: clear recovery wrap: %w", err)
			}
		}
		r.recoveryWrapped, r.recoveryIV, r.recoverySetAt, r.recoveryVersion = nil, nil, nil, nil
		st = r.status()
		return map[string]any{"hadRecoveryWrap": had}, nil
	})
	return st, err
}

// EnableZeroKnowledge deletes the server-wrapped copy of the key, leaving
// only the recovery wrap and a key check value derived from the key (so
// that DisableZeroKnowledge can refuse a wrong key); idempotent. The
// stored key must unwrap to derive the check value: if it does not, the
// mode stays off and the answer is INTERNAL. Errors: VAULT_NOT_FOUND,
// RECOVERY_WRAP_MISSING, INTERNAL, SERVICE_UNAVAILABLE. See the package
// doc for what it does not protect against.
func (s *Service) EnableZeroKnowledge(ctx context.Context, userID uuid.UUID, c Client) (Status, error) {
	var st Status
	err := s.do(ctx, userID, ActionZKEnable, c, func(tx pgx.Tx) (map[string]any, error) {
		r, err := load(ctx, tx, userID, true)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, errNotFound
		}
		if r.zeroKnowledge {
			st = r.status()
			return map[string]any{"alreadyEnabled": true}, nil
		}
		if r.recoveryWrapped == nil {
			return nil, errRecoveryNeeded
		}
		mk, err := s.unwrap(ctx, userID, r.wrapped)
		if err != nil {
			return nil, err
		}
		check := keyCheck(mk)
		clear(mk)
		if _, err := tx.Exec(ctx, `UPDATE auth.encryption_vaults SET zero_knowledge = true, wrapped_mk = NULL,
			wrap_iv = NULL, kek_id = NULL, key_check = $2 WHERE user_id = $1`, userID, check); err != nil {
			return nil, fmt.Errorf("vault: enable zero knowledge: %w", err)
		}
		r.zeroKnowledge = true
		st = r.status()
		return map[string]any{"alreadyEnabled": false, "previousKekId": r.wrapped.KEKID}, nil
	})
	return st, err
}

// DisableZeroKnowledge takes the master key back from the client (who
// unwrapped it with the recovery code), compares it in constant time with
// the key check value stored when the mode was switched on, wraps it under
// the active KEK, checks that the wrap opens to the same bytes before
// storing it, clears the check value, and zeroes masterKey in every case.
// A key that does not match is refused (VALIDATION_FAILED naming
// masterKey, with ErrKeyMismatch as its cause; audited, nothing changes).
// A row switched on before migration 0002 has no check value: any 32-byte
// key is then taken as before, and the audit row says keyChecked false.
// Without zero-knowledge mode it changes nothing (the stored key is kept).
// Errors: VALIDATION_FAILED (not 32 bytes, or not the vault's key),
// VAULT_NOT_FOUND, INTERNAL, SERVICE_UNAVAILABLE.
func (s *Service) DisableZeroKnowledge(ctx context.Context, userID uuid.UUID, masterKey []byte, c Client) (Status, error) {
	defer clear(masterKey)
	var st Status
	err := s.do(ctx, userID, ActionZKDisable, c, func(tx pgx.Tx) (map[string]any, error) {
		if len(masterKey) != MasterKeySize {
			return nil, invalid(map[string]string{"masterKey": "must be base64 of exactly 32 bytes"})
		}
		r, err := load(ctx, tx, userID, true)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, errNotFound
		}
		if !r.zeroKnowledge {
			st = r.status()
			return map[string]any{"alreadyDisabled": true}, nil
		}
		checked := r.keyCheck != nil
		if checked && !hmac.Equal(keyCheck(masterKey), r.keyCheck) {
			return nil, &autherr.Error{Code: autherr.ValidationFailed, Message: "request validation failed",
				Err: ErrKeyMismatch, Details: map[string]any{"fields": map[string]string{
					"masterKey": "does not match the key of this vault"}}}
		}
		w, err := Wrap(ctx, s.keys, userID, masterKey)
		if err != nil {
			return nil, err
		}
		back, err := s.unwrap(ctx, userID, w)
		if err != nil {
			return nil, err
		}
		same := subtle.ConstantTimeCompare(back, masterKey) == 1
		clear(back)
		if !same {
			return nil, errors.New("vault: disable zero knowledge: the new wrap does not open to the key")
		}
		if _, err := tx.Exec(ctx, `UPDATE auth.encryption_vaults SET zero_knowledge = false, wrapped_mk = $2,
			wrap_iv = $3, kek_id = $4, format_version = $5, key_check = NULL WHERE user_id = $1`,
			userID, w.Ciphertext, w.IV, w.KEKID, w.FormatVersion); err != nil {
			return nil, fmt.Errorf("vault: disable zero knowledge: %w", err)
		}
		r.zeroKnowledge, r.keyCheck = false, nil
		st = r.status()
		return map[string]any{"alreadyDisabled": false, "kekId": w.KEKID, "keyChecked": checked}, nil
	})
	return st, err
}
