package manaauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/dbtx"
	"github.com/mana-how/mana-auth/internal/metrics"
	"github.com/mana-how/mana-auth/internal/secret"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/password"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// Hooks let other packages take part in account life cycles without
// manaauth importing them (the reference server wires spaces and
// bootstrap here).
type Hooks struct {
	// UserCreatedTx runs inside the registration transaction, after the
	// user row is written (spaces makes the Personal space here): its
	// error fails the registration.
	UserCreatedTx func(ctx context.Context, tx pgx.Tx, u User) error
	// UserCreated runs after the registration committed (bootstrapping
	// singletons). Its error does not fail the registration: it is logged
	// at warn with its cause and counted in
	// mana_auth_hook_failures_total{hook="user_created"}.
	UserCreated func(ctx context.Context, u User) error
	// UserDeletingTx runs inside the transaction that deletes an account,
	// before the user row goes: its error (spaces refuses to leave a shared
	// space without an owner, CONFLICT) refuses the deletion.
	UserDeletingTx func(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error
}

// Config configures a Service. Zero values take the documented defaults.
type Config struct {
	Pool   *pgxpool.Pool    // runtime role; required
	Tokens *token.Tokens    // required: signs the access tokens
	Mailer mail.Mailer      // required (mail.LogMailer in development)
	Links  mail.Links       // required: links in mails come from here only
	Hasher *password.Hasher // nil: password.NewHasher with its defaults
	Policy password.Policy  // zero: defaults (8..256 code points)
	// Gate and Events, nil: built on Pool with lockout's defaults. Every
	// credential check passes the gate.
	Gate   *lockout.Service
	Events *lockout.Events
	Hooks  Hooks // optional
	// SecondFactor, when set, is asked after every right password whether
	// the account needs a second step (the mfa package); nil: none.
	SecondFactor SecondFactor
	Now          func() time.Time // default time.Now
	Rand         io.Reader        // default crypto/rand.Reader
	Logger       *slog.Logger     // default slog.Default()
	// Registerer receives the service's counters; nil leaves them unregistered.
	Registerer prometheus.Registerer

	RequireEmailVerification bool
	MaxDailySignups          int           // 0: unlimited
	SessionTTL               time.Duration // default 30 days: refresh tokens and cookies live as long
	RefreshGrace             time.Duration // default 10 s: a spent refresh token retried within it gets the same child
	VerifyTTL                time.Duration // default 24 h
	ResetTTL                 time.Duration // default 1 h
	ChangeEmailTTL           time.Duration // default 24 h
}

// Service implements api.md's Auth section.
type Service struct {
	cfg      Config
	now      func() time.Time
	rand     io.Reader
	logger   *slog.Logger
	childKey []byte
	// secureCookies: the session cookie carries Secure unless the base URL
	// is plain http on this machine (localhost, a loopback address) — the
	// one place a browser keeps a cookie sent over http that it would
	// otherwise refuse.
	secureCookies bool
	csrfKey       []byte
	hookFailures  *prometheus.CounterVec
	outbox        *mail.Outbox
}

// New validates cfg and fills in the defaults.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("manaauth: Config.Pool is required")
	case cfg.Tokens == nil:
		return nil, errors.New("manaauth: Config.Tokens is required")
	case cfg.Mailer == nil:
		return nil, errors.New("manaauth: Config.Mailer is required (mail.LogMailer in development)")
	case cfg.Links.BaseURL == nil:
		return nil, errors.New("manaauth: Config.Links.BaseURL is required")
	case cfg.MaxDailySignups < 0:
		return nil, errors.New("manaauth: MaxDailySignups must not be negative")
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.SessionTTL, 30*24*time.Hour)
	def(&cfg.RefreshGrace, 10*time.Second)
	def(&cfg.VerifyTTL, 24*time.Hour)
	def(&cfg.ResetTTL, time.Hour)
	def(&cfg.ChangeEmailTTL, 24*time.Hour)
	s := &Service{cfg: cfg, now: cfg.Now, rand: cfg.Rand, logger: cfg.Logger,
		secureCookies: cfg.Links.BaseURL.Scheme != "http" || !isLoopbackHost(cfg.Links.BaseURL.Hostname())}
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
	if s.cfg.Hasher == nil {
		if s.cfg.Hasher, err = password.NewHasher(password.HasherConfig{}); err != nil {
			return nil, fmt.Errorf("manaauth: %w", err)
		}
	}
	if s.cfg.Events == nil {
		if s.cfg.Events, err = lockout.NewEvents(lockout.EventsConfig{Pool: cfg.Pool, Now: cfg.Now, Logger: s.logger, Registerer: cfg.Registerer}); err != nil {
			return nil, fmt.Errorf("manaauth: %w", err)
		}
	}
	if s.cfg.Gate == nil {
		if s.cfg.Gate, err = lockout.New(lockout.Config{Pool: cfg.Pool, Events: s.cfg.Events, Now: cfg.Now, Logger: s.logger}); err != nil {
			return nil, fmt.Errorf("manaauth: %w", err)
		}
	}
	if s.hookFailures, err = metrics.HookFailures(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("manaauth: %w", err)
	}
	mailFailures, err := metrics.MailFailures(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("manaauth: %w", err)
	}
	s.outbox = mail.NewOutbox(cfg.Mailer, s.logger, mailFailures.Inc)
	// The key that derives a refresh token's child from the token itself
	// (see Refresh), from the signing key so that every instance agrees.
	if s.childKey, err = cfg.Tokens.DeriveKey("mana-auth refresh child v1", 32); err != nil {
		return nil, fmt.Errorf("manaauth: %w", err)
	}
	if s.csrfKey, err = cfg.Tokens.DeriveKey("mana-auth csrf v1", 32); err != nil {
		return nil, fmt.Errorf("manaauth: %w", err)
	}
	return s, nil
}

// Close waits for mails still being sent.
func (s *Service) Close() { s.outbox.Close() }

// User is the public view of an account (api.md).
type User struct {
	ID            uuid.UUID `json:"id"`
	Email         string    `json:"email"`
	Name          *string   `json:"name"`
	Image         *string   `json:"image"`
	EmailVerified bool      `json:"emailVerified"`
	CreatedAt     time.Time `json:"createdAt"`
}

// account is a user row with what only the service sees.
type account struct {
	User
	passwordHash *string
	disabled     bool
}

const userColumns = `id, email, name, image, password_hash, email_verified_at IS NOT NULL, created_at, disabled_at IS NOT NULL`

// qualifiedUserColumns is userColumns of the table aliased u.
const qualifiedUserColumns = `u.id, u.email, u.name, u.image, u.password_hash, u.email_verified_at IS NOT NULL, u.created_at,
	u.disabled_at IS NOT NULL`

func scanAccount(row pgx.Row) (account, error) {
	var a account
	err := row.Scan(&a.ID, &a.Email, &a.Name, &a.Image, &a.passwordHash, &a.EmailVerified, &a.CreatedAt, &a.disabled)
	a.CreatedAt = a.CreatedAt.UTC()
	return a, err
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// findByEmail returns the account, or ok=false when there is none.
func findByEmail(ctx context.Context, q querier, email string) (account, bool, error) {
	a, err := scanAccount(q.QueryRow(ctx, `SELECT `+userColumns+` FROM auth.users WHERE email = $1`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return account{}, false, nil
	}
	if err != nil {
		return account{}, false, fmt.Errorf("manaauth: find user by email: %w", err)
	}
	return a, true, nil
}

func findByID(ctx context.Context, q querier, id uuid.UUID) (account, error) {
	a, err := scanAccount(q.QueryRow(ctx, `SELECT `+userColumns+` FROM auth.users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return account{}, autherr.New(autherr.NotFound, "user not found")
	}
	if err != nil {
		return account{}, fmt.Errorf("manaauth: find user: %w", err)
	}
	return a, nil
}

// CanonicalEmail trims, validates and lower-cases an address (see
// mail.Canonical); it answers VALIDATION_FAILED naming field.
func CanonicalEmail(field, email string) (string, error) { return mail.Canonical(field, email) }

// newToken returns a 256-bit random token (URL-safe base64) and its SHA-256.
func (s *Service) newToken() (string, []byte, error) {
	tok, h, err := secret.New(s.rand)
	if err != nil {
		return "", nil, fmt.Errorf("manaauth: %w", err)
	}
	return tok, h, nil
}

func hashToken(tok string) []byte { return secret.Hash(tok) }

// childToken derives the refresh token that replaces parent. Deriving it
// (instead of drawing it at random) lets a client that lost the answer to
// a refresh retry with the spent token inside the grace window and receive
// the same child, while the database still stores hashes only.
func (s *Service) childToken(parent string) (string, []byte) {
	m := hmac.New(sha256.New, s.childKey)
	m.Write([]byte(parent))
	tok := base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	return tok, hashToken(tok)
}

func (s *Service) inTx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	return dbtx.Run(ctx, s.cfg.Pool, s.logger, "manaauth: "+what, fn)
}

// sendMail sends in the background, so that the answer's timing does not
// tell whether a mail was sent (account enumeration); failures are logged
// at warn with their cause and counted.
func (s *Service) sendMail(ctx context.Context, kind string, m mail.Message) {
	s.outbox.Post(ctx, kind, m)
}

func isUniqueViolation(err error, constraint string) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505" && (constraint == "" || pg.ConstraintName == constraint)
}

func invalidField(field, msg string) error { return web.Invalid(map[string]string{field: msg}) }

// isLoopbackHost reports whether host names this machine: localhost (or a
// name under .localhost) or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
