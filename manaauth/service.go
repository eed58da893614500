package manaauth

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/web"
)

// Hooks let other packages take part in account life cycles without
// manaauth importing them.
type Hooks struct {
	// UserCreatedTx runs inside the registration transaction, after the
	// user's Personal space was made there: its error fails the
	// registration.
	UserCreatedTx func(ctx context.Context, tx pgx.Tx, u User) error
	// UserCreated runs after the registration committed (bootstrapping
	// singletons). Its error does not fail the registration: it is logged
	// at warn with its cause and counted in
	// mana_auth_hook_failures_total{hook="user_created"}.
	UserCreated func(ctx context.Context, u User) error
	// SpaceCreated runs inside the transaction that creates a space (the
	// Personal space at registration, every CreateSpace), after the space
	// and its owner's membership are written: bootstrapping the space's
	// kontextDoc. Its error does not fail the creation: what it wrote is
	// rolled back to a savepoint, the error is logged at warn with its
	// cause and counted in mana_auth_hook_failures_total{hook="space_created"},
	// and the bootstrap reconcile endpoint catches up later.
	SpaceCreated func(ctx context.Context, tx pgx.Tx, spaceID, ownerID uuid.UUID) error
}

// Config configures a Service. Zero durations take the documented defaults.
type Config struct {
	Pool   *pgxpool.Pool    // runtime role; required
	Hasher *Hasher          // required
	Policy PasswordPolicy   // zero: defaults (8..256 code points)
	Tokens *Tokens          // required
	Gate   *lockout.Service // required: every credential check passes it
	Events *lockout.Events  // required
	Mailer Mailer           // required (LogMailer in development)
	Links  Links            // required: links in mails come from here only
	Hooks  Hooks            // optional
	Now    func() time.Time // default time.Now
	Rand   io.Reader        // default crypto/rand.Reader
	Logger *slog.Logger     // default: discard
	// Registerer receives the service's counters; nil leaves them unregistered.
	Registerer prometheus.Registerer

	RequireEmailVerification bool
	MaxDailySignups          int           // 0: unlimited
	SessionTTL               time.Duration // default 30 days: refresh tokens and cookies live as long
	RefreshGrace             time.Duration // default 10 s: a spent refresh token retried within it gets the same child
	VerifyTTL                time.Duration // default 24 h
	ResetTTL                 time.Duration // default 1 h
	ChangeEmailTTL           time.Duration // default 24 h
	SecureCookies            bool          // Secure attribute on the session cookie (everywhere but development)
	InvitationTTL            time.Duration // default 7 days: how long a space invitation can be accepted
}

// Service implements api.md's Auth section.
type Service struct {
	cfg          Config
	now          func() time.Time
	rand         io.Reader
	logger       *slog.Logger
	childKey     []byte
	hookFailures *prometheus.CounterVec
	mailFailures prometheus.Counter
	mailWG       sync.WaitGroup
}

// New validates cfg.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("manaauth: Config.Pool is required")
	case cfg.Hasher == nil:
		return nil, errors.New("manaauth: Config.Hasher is required")
	case cfg.Tokens == nil:
		return nil, errors.New("manaauth: Config.Tokens is required")
	case cfg.Gate == nil || cfg.Events == nil:
		return nil, errors.New("manaauth: Config.Gate and Config.Events are required")
	case cfg.Mailer == nil:
		return nil, errors.New("manaauth: Config.Mailer is required")
	case cfg.Links.BaseURL == nil:
		return nil, errors.New("manaauth: Config.Links.BaseURL is required")
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
	def(&cfg.InvitationTTL, 7*24*time.Hour)
	if cfg.InvitationTTL < 0 {
		return nil, errors.New("manaauth: InvitationTTL must not be negative")
	}
	if cfg.MaxDailySignups < 0 {
		return nil, errors.New("manaauth: MaxDailySignups must not be negative")
	}
	s := &Service{cfg: cfg, now: cfg.Now, rand: cfg.Rand, logger: cfg.Logger,
		hookFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mana_auth_hook_failures_total",
			Help: "Account hooks that failed after their action committed (each logged at warn).",
		}, []string{"hook"}),
		mailFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mana_auth_mail_failures_total",
			Help: "Mails that could not be sent (each logged at warn with its cause).",
		}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.hookFailures, s.mailFailures} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("manaauth: register metrics: %w", err)
			}
		}
	}
	// The key that derives a refresh token's child from the token itself
	// (see Refresh), from the signing key so that every instance agrees.
	key, err := hkdf.Key(sha256.New, cfg.Tokens.signingSeed(), nil, "mana-auth refresh child v1", 32)
	if err != nil {
		return nil, fmt.Errorf("manaauth: derive refresh key: %w", err)
	}
	s.childKey = key
	return s, nil
}

// Close waits for mails still being sent.
func (s *Service) Close() { s.mailWG.Wait() }

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
}

const userColumns = `id, email, name, image, password_hash, email_verified_at IS NOT NULL, created_at`

func scanAccount(row pgx.Row) (account, error) {
	var a account
	err := row.Scan(&a.ID, &a.Email, &a.Name, &a.Image, &a.passwordHash, &a.EmailVerified, &a.CreatedAt)
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

// CanonicalEmail trims, validates and lower-cases an address; it answers
// VALIDATION_FAILED naming field when the address is not a plain
// addr-spec.
func CanonicalEmail(field, email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	bad := func(msg string) error { return web.Invalid(map[string]string{field: msg}) }
	if e == "" {
		return "", bad("required")
	}
	if len(e) > 254 || !utf8.ValidString(e) {
		return "", bad("not a valid email address")
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" || strings.Count(e, "@") != 1 {
		return "", bad("not a valid email address")
	}
	local, domain, _ := strings.Cut(e, "@")
	if local == "" || domain == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", bad("not a valid email address")
	}
	return e, nil
}

// newToken returns a 256-bit random token (URL-safe base64) and its SHA-256.
func (s *Service) newToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", nil, fmt.Errorf("manaauth: random token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok), nil
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

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
	tx, err := s.cfg.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("manaauth: %s: %w", what, err)
	}
	defer func() {
		if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			s.logger.Warn("manaauth: rollback", "op", what, "err", err)
		}
	}()
	if err := fn(tx); err != nil {
		return fmt.Errorf("manaauth: %s: %w", what, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("manaauth: %s: commit: %w", what, err)
	}
	return nil
}

// sendMail sends in the background, so that the answer's timing does not
// tell whether a mail was sent (account enumeration); failures are logged
// at warn with their cause and counted.
func (s *Service) sendMail(ctx context.Context, kind string, m Message) {
	s.mailWG.Add(1)
	go func() {
		defer s.mailWG.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := s.cfg.Mailer.Send(ctx, m); err != nil {
			s.mailFailures.Inc()
			s.logger.Warn("manaauth: mail not sent", "kind", kind, "err", err)
		}
	}()
}

func isUniqueViolation(err error, constraint string) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505" && (constraint == "" || pg.ConstraintName == constraint)
}

// signingSeed is the private seed of the current signing key, the root of
// the service's derived keys.
func (t *Tokens) signingSeed() []byte { return t.signing.Private.Seed() }

func invalidField(field, msg string) error { return web.Invalid(map[string]string{field: msg}) }
