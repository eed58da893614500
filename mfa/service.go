package mfa

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/dbtx"
	"github.com/mana-how/mana-auth/internal/metrics"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/vault"
	"github.com/mana-how/mana-auth/web"
)

// Config configures a Service. Zero values take the documented defaults.
type Config struct {
	Pool *pgxpool.Pool // the runtime role (row-level security applies); required
	// Accounts is required: it starts the session a verified code
	// completes, re-checks the password and the session's age for
	// enrolment and removal, and lends its lockout gate and event log, so
	// that wrong codes count toward the same lock as wrong passwords.
	Accounts *manaauth.Service
	// Keys seals the TOTP secrets (the reference server passes its vault
	// KEK ring); required.
	Keys vault.KeyWrapper
	// Mailer sends the notices (enabled, disabled, recovery code used);
	// required (mail.LogMailer in development).
	Mailer mail.Mailer
	// Issuer is the name authenticator apps show beside the account;
	// default "mana".
	Issuer string
	Now    func() time.Time // default time.Now
	Rand   io.Reader        // secrets and recovery codes; default crypto/rand.Reader
	Logger *slog.Logger     // default slog.Default()
	// Registerer receives mana_auth_mfa_secret_failures_total and the
	// shared mail failure counter; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Service manages second factors and completes the sign-ins that need
// one. Safe for concurrent use.
type Service struct {
	pool     *pgxpool.Pool
	accounts *manaauth.Service
	gate     *lockout.Service
	events   *lockout.Events
	keys     vault.KeyWrapper
	issuer   string
	now      func() time.Time
	rand     io.Reader
	logger   *slog.Logger
	outbox   *mail.Outbox
	openFail prometheus.Counter
}

// New validates cfg.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("mfa: Config.Pool is required")
	case cfg.Accounts == nil:
		return nil, errors.New("mfa: Config.Accounts is required")
	case cfg.Keys == nil:
		return nil, errors.New("mfa: Config.Keys is required (the vault's KEK ring)")
	case cfg.Mailer == nil:
		return nil, errors.New("mfa: Config.Mailer is required (mail.LogMailer in development)")
	case !vault.ValidKEKID(cfg.Keys.ActiveKEKID()):
		return nil, fmt.Errorf("mfa: active KEK id %q is not valid", cfg.Keys.ActiveKEKID())
	}
	s := &Service{pool: cfg.Pool, accounts: cfg.Accounts, gate: cfg.Accounts.Gate(), events: cfg.Accounts.Events(),
		keys: cfg.Keys, issuer: cfg.Issuer, now: cfg.Now, rand: cfg.Rand, logger: cfg.Logger}
	if s.issuer == "" {
		s.issuer = "mana"
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	var err error
	if s.openFail, err = metrics.Counter(cfg.Registerer, prometheus.CounterOpts{
		Name: "mana_auth_mfa_secret_failures_total",
		Help: "Stored TOTP secrets that could not be opened (each logged with user, factor and KEK id).",
	}); err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	mailFailures, err := metrics.MailFailures(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	s.outbox = mail.NewOutbox(cfg.Mailer, s.logger, mailFailures.Inc)
	return s, nil
}

// Close waits for the notices still being sent.
func (s *Service) Close() { s.outbox.Close() }

var (
	errInvalidCode  = autherr.New(autherr.MFAInvalidCode, "invalid or already used code")
	errTokenInvalid = autherr.New(autherr.TokenInvalid, "invalid mfa token; sign in again")
)

// Proof is what proves the second factor: exactly one of a TOTP code and
// a recovery code.
type Proof struct {
	Code         string `json:"code"`
	RecoveryCode string `json:"recoveryCode"`
}

// parse checks the shape of p and returns the normalised code; recovery
// tells which one it is.
func (p Proof) parse() (code string, recovery bool, err error) {
	switch {
	case p.Code != "" && p.RecoveryCode != "":
		return "", false, invalidField("recoveryCode", "send either code or recoveryCode, not both")
	case p.Code != "":
		code, err = parseCode("code", p.Code)
		return code, false, err
	case p.RecoveryCode != "":
		code, err = normalizeRecoveryCode("recoveryCode", p.RecoveryCode)
		return code, true, err
	}
	return "", false, invalidField("code", "required (or recoveryCode)")
}

// factor is a user's row of auth.mfa_factors.
type factor struct {
	id       uuid.UUID
	active   bool
	secret   sealed
	lastStep *int64
}

const factorColumns = `id, status = 'active', secret_sealed, secret_iv, kek_id, format_version, last_step`

func scanFactor(row pgx.Row) (*factor, error) {
	var f factor
	err := row.Scan(&f.id, &f.active, &f.secret.Box, &f.secret.IV, &f.secret.KEKID, &f.secret.Version, &f.lastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mfa: read factor: %w", err)
	}
	return &f, nil
}

// loadFactor reads the user's TOTP factor inside tx (which runs as the
// user); nil when there is none. lock takes the row lock.
func loadFactor(ctx context.Context, tx pgx.Tx, userID uuid.UUID, lock bool) (*factor, error) {
	q := `SELECT ` + factorColumns + ` FROM auth.mfa_factors WHERE user_id = $1 AND kind = 'totp'`
	if lock {
		q += ` FOR UPDATE`
	}
	return scanFactor(tx.QueryRow(ctx, q, userID))
}

// openSecret opens a factor's secret. A KEK missing from the ring is
// SERVICE_UNAVAILABLE (configuration: every such factor fails until the
// key is back); a secret that does not open under a KEK the ring holds is
// INTERNAL (a damaged or altered row). Both are logged with the ids —
// never key bytes — and counted; neither counts toward the lock.
func (s *Service) openSecret(ctx context.Context, userID uuid.UUID, f *factor) ([]byte, error) {
	if h, ok := s.keys.(vault.KEKHolder); ok && !h.Has(f.secret.KEKID) {
		s.openFail.Inc()
		s.logger.LogAttrs(ctx, slog.LevelError, "mfa: TOTP secret is sealed under a KEK the key ring does not hold",
			slog.String("user_id", userID.String()), slog.String("factor_id", f.id.String()),
			slog.String("kek_id", f.secret.KEKID), slog.String("hint", "add the old KEK to "+vault.EnvKEKs+" (new first), then run rewrap"))
		return nil, autherr.Wrap(autherr.ServiceUnavailable, fmt.Errorf("mfa: KEK %q is not in the key ring", f.secret.KEKID), "")
	}
	secret, err := open(ctx, s.keys, userID, f.id, f.secret)
	if err != nil {
		s.openFail.Inc()
		s.logger.LogAttrs(ctx, slog.LevelError, "mfa: stored TOTP secret could not be opened",
			slog.String("user_id", userID.String()), slog.String("factor_id", f.id.String()),
			slog.String("kek_id", f.secret.KEKID), slog.Int("format_version", f.secret.Version))
		return nil, autherr.Wrap(autherr.Internal, err, "")
	}
	return secret, nil
}

// checkCode opens f's secret and returns the time step code belongs to
// (later than the last one accepted), or MFA_INVALID_CODE.
func (s *Service) checkCode(ctx context.Context, userID uuid.UUID, f *factor, code string) (int64, error) {
	secret, err := s.openSecret(ctx, userID, f)
	if err != nil {
		return 0, err
	}
	defer clear(secret)
	step, ok, err := matchStep(secret, code, s.now(), f.lastStep)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errInvalidCode
	}
	return step, nil
}

// asUser points the row-level security of tx at userID until tx ends.
func asUser(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	if _, err := tx.Exec(ctx, `SELECT set_config('`+vault.UserSetting+`', $1, true)`, userID.String()); err != nil {
		return fmt.Errorf("mfa: set %s: %w", vault.UserSetting, err)
	}
	return nil
}

// inTx runs fn in a transaction that sees userID's rows only.
func (s *Service) inTx(ctx context.Context, userID uuid.UUID, what string, fn func(pgx.Tx) error) error {
	return dbtx.Run(ctx, s.pool, s.logger, "mfa: "+what, func(tx pgx.Tx) error {
		if err := asUser(ctx, tx, userID); err != nil {
			return err
		}
		return fn(tx)
	})
}

// finish records the outcome of a check at the gate and returns the error
// the caller answers with: the outcome, or the gate's own failure to
// record it.
func finish(ctx context.Context, t *lockout.Ticket, userID uuid.UUID, outcome error) error {
	if err := t.Finish(ctx, userID, outcome); err != nil {
		if outcome != nil && !autherr.CountsTowardLockout(outcome) {
			return errors.Join(outcome, err)
		}
		return err
	}
	return outcome
}

// notify mails a notice to the user's address in the background.
func (s *Service) notify(ctx context.Context, kind string, m mail.Message) {
	s.outbox.Post(ctx, kind, m)
}

func invalidField(field, msg string) error { return web.Invalid(map[string]string{field: msg}) }
