package passkey

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/mana-how/mana-auth/internal/metrics"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
)

// ChallengeTTL is how long a ceremony's challenge can be used (api.md:
// 5 minutes); it is also the timeout the options give the browser.
const ChallengeTTL = 5 * time.Minute

// The rates of api.md's Passkeys section, the defaults of Limits.
var (
	// OptionsRate limits both options routes per client IP.
	OptionsRate = lockout.Rate{Limit: 20, Period: time.Minute}
	// FailureRate counts failed sign-in verifications per credential.
	FailureRate = lockout.Rate{Limit: 10, Period: time.Minute}
	// CooldownRate is the cooldown the failures start: one engagement
	// holds for its Period.
	CooldownRate = lockout.Rate{Limit: 1, Period: 5 * time.Minute}
)

// Limits are the rate limits of api.md's Passkeys section. A nil field
// is an in-memory limiter at its default rate on the service's clock:
// right for one instance. Several instances share limiters in Redis
// (lockout.NewRedisLimiter) built at the same rates, each with a prefix
// of its own.
type Limits struct {
	// Options limits the two options routes per client IP (OptionsRate).
	Options lockout.Limiter
	// Failures counts failed sign-in verifications (FailureRate): per
	// credential, or per client IP when the credential is unknown. When a
	// failure leaves it without a unit, the Cooldown starts.
	Failures lockout.Peeker
	// Cooldown refuses every sign-in verification of the credential (or
	// IP) while it holds (CooldownRate): 429 RATE_LIMITED with
	// Retry-After, even for a valid assertion.
	Cooldown lockout.Peeker
}

// Config configures a Service. Zero values take the documented defaults.
type Config struct {
	// Accounts starts the sessions (manaauth.Service.StartSession), asks
	// for a second factor, checks how recent a session is, and provides
	// the gate and the security event log. Required.
	Accounts *manaauth.Service
	// Pool is the runtime role's pool: challenges and the sign-in path
	// through pgx, the credential store through bun over the same pool.
	// Required.
	Pool *pgxpool.Pool
	// RPID is the WebAuthn relying party id: a domain name, not an IP
	// address (api.md: WEBAUTHN_RP_ID, default the host of
	// MANA_AUTH_BASE_URL). Required.
	RPID string
	// RPName is the name authenticators show; default RPID.
	RPName string
	// Origins are the origins ceremonies may come from
	// ("https://app.example.com"): https, or http on localhost (the
	// contexts where browsers offer WebAuthn), each on RPID or a
	// subdomain of it. At least one.
	Origins []string
	// Mailer sends the notice of a new passkey. Required.
	Mailer mail.Mailer
	// DecoyKey keys the stand-in credential lists of sign-in options for
	// addresses without passkeys (see BeginSignIn): at least 32 bytes,
	// the same on every instance, so that repeated calls agree wherever
	// they land. Required.
	DecoyKey []byte
	// UserVerification is what the options ask of authenticators:
	// "preferred" (the default; a sign-in without user verification then
	// takes the account's second factor when it has one) or "required"
	// (every ceremony must verify the user; an assertion without the UV
	// flag is refused). "discouraged" is refused: a passkey that verified
	// nobody should not stand in for a password.
	UserVerification protocol.UserVerificationRequirement
	// Limits, nil fields: in-memory limiters at api.md's rates.
	Limits Limits
	Now    func() time.Time // default time.Now
	Rand   io.Reader        // default crypto/rand.Reader: challenge and passkey ids (go-webauthn draws the challenges from crypto/rand)
	Logger *slog.Logger     // default slog.Default()
	// Registerer receives the mail failure counter; nil leaves it
	// unregistered.
	Registerer prometheus.Registerer
}

// Service runs the WebAuthn ceremonies of api.md's Passkeys section and
// keeps the credentials. It is safe for concurrent use; call Close when
// done.
type Service struct {
	cfg      Config
	wa       *webauthn.WebAuthn
	accounts *manaauth.Service
	pool     *pgxpool.Pool
	sqlDB    *sql.DB
	db       *bun.DB
	limits   Limits
	now      func() time.Time
	rand     io.Reader
	logger   *slog.Logger
	outbox   *mail.Outbox
}

// New validates cfg and fills in the defaults.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Accounts == nil:
		return nil, errors.New("passkey: Config.Accounts is required")
	case cfg.Pool == nil:
		return nil, errors.New("passkey: Config.Pool is required")
	case cfg.Mailer == nil:
		return nil, errors.New("passkey: Config.Mailer is required (mail.LogMailer in development)")
	case len(cfg.DecoyKey) < 32:
		return nil, errors.New("passkey: Config.DecoyKey must be at least 32 bytes, the same on every instance")
	}
	rpID, err := checkRPID(cfg.RPID)
	if err != nil {
		return nil, err
	}
	cfg.RPID = rpID
	if len(cfg.Origins) == 0 {
		return nil, errors.New("passkey: Config.Origins needs at least one origin")
	}
	origins := make([]string, len(cfg.Origins))
	for i, o := range cfg.Origins {
		if origins[i], err = checkOrigin(o, rpID); err != nil {
			return nil, err
		}
	}
	switch cfg.UserVerification {
	case "":
		cfg.UserVerification = protocol.VerificationPreferred
	case protocol.VerificationPreferred, protocol.VerificationRequired:
	default:
		return nil, fmt.Errorf("passkey: Config.UserVerification %q: preferred or required", cfg.UserVerification)
	}
	if cfg.RPName == "" {
		cfg.RPName = rpID
	}
	s := &Service{cfg: cfg, accounts: cfg.Accounts, pool: cfg.Pool, now: cfg.Now, rand: cfg.Rand, logger: cfg.Logger, limits: cfg.Limits}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	timeouts := webauthn.TimeoutConfig{Timeout: ChallengeTTL, TimeoutUVD: ChallengeTTL}
	s.wa, err = webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: cfg.RPName,
		RPOrigins:     origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			RequireResidentKey: protocol.ResidentKeyNotRequired(),
			ResidentKey:        protocol.ResidentKeyRequirementPreferred,
			UserVerification:   cfg.UserVerification,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		// The challenge's expiry is enforced in PostgreSQL on the
		// service's clock; these only tell the browser how long to wait.
		Timeouts: webauthn.TimeoutsConfig{Login: timeouts, Registration: timeouts},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	if err := s.defaultLimits(); err != nil {
		return nil, err
	}
	mailFailures, err := metrics.MailFailures(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	s.outbox = mail.NewOutbox(cfg.Mailer, s.logger, mailFailures.Inc)
	s.sqlDB = stdlib.OpenDBFromPool(cfg.Pool)
	s.db = bun.NewDB(s.sqlDB, pgdialect.New())
	return s, nil
}

func (s *Service) defaultLimits() error {
	mem := func(r lockout.Rate) (*lockout.MemoryLimiter, error) {
		return lockout.NewMemoryLimiter(lockout.MemoryConfig{Rate: r, Now: s.now})
	}
	var err error
	if s.limits.Options == nil {
		if s.limits.Options, err = mem(OptionsRate); err != nil {
			return fmt.Errorf("passkey: %w", err)
		}
	}
	if s.limits.Failures == nil {
		if s.limits.Failures, err = mem(FailureRate); err != nil {
			return fmt.Errorf("passkey: %w", err)
		}
	}
	if s.limits.Cooldown == nil {
		if s.limits.Cooldown, err = mem(CooldownRate); err != nil {
			return fmt.Errorf("passkey: %w", err)
		}
	}
	return nil
}

// Close waits for notice mails still being sent and releases the
// database/sql handle bun uses (the pool stays open: it is the caller's).
func (s *Service) Close() error {
	s.outbox.Close()
	return s.sqlDB.Close()
}

// RPID is the relying party id the ceremonies are bound to.
func (s *Service) RPID() string { return s.cfg.RPID }

// checkRPID returns id lower-cased when it is a domain name: not an IP
// address, no scheme, port or path.
func checkRPID(id string) (string, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if id == "" {
		return "", errors.New("passkey: Config.RPID is required")
	}
	if _, err := netip.ParseAddr(strings.Trim(id, "[]")); err == nil {
		return "", fmt.Errorf("passkey: Config.RPID %q is an IP address; WebAuthn needs a domain name", id)
	}
	if strings.ContainsAny(id, "/:@ ") || strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".") {
		return "", fmt.Errorf("passkey: Config.RPID %q is not a domain name", id)
	}
	if err := protocol.ValidateRPID(id); err != nil {
		return "", fmt.Errorf("passkey: Config.RPID %q: %w", id, err)
	}
	return id, nil
}

// checkOrigin returns o as "scheme://host[:port]" when it is an origin a
// browser runs WebAuthn in for rpID: https (or http on localhost), on
// rpID or a subdomain of it, without path, query or fragment.
func checkOrigin(o, rpID string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("passkey: origin %q is not scheme://host[:port]", o)
	}
	host := strings.ToLower(u.Hostname())
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "https":
	case scheme == "http" && isLocalhost(host):
	default:
		return "", fmt.Errorf("passkey: origin %q: browsers offer WebAuthn only on https (or http on localhost)", o)
	}
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return "", fmt.Errorf("passkey: origin %q is neither the RP ID %q nor a subdomain of it", o, rpID)
	}
	out := scheme + "://" + host
	if p := u.Port(); p != "" {
		out += ":" + p
	}
	return out, nil
}

// isLocalhost reports the host names browsers treat as a secure context
// over plain http.
func isLocalhost(host string) bool {
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// SecureOrigin reports whether u, a public base URL, is a context browsers
// offer WebAuthn in: https, or http on localhost. A host may leave
// passkeys off (NewHandler with a nil Service) when it is not.
func SecureOrigin(u *url.URL) bool {
	if u == nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return u.Hostname() != ""
	case "http":
		return isLocalhost(strings.ToLower(u.Hostname()))
	}
	return false
}
