package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mana-how/mana-auth/password"
	"github.com/mana-how/mana-auth/vault"
	"github.com/mana-how/mana-auth/web"
)

// Config is the reference server's configuration, read from the environment
// (api.md, "Reference server configuration"). Every bad value is an error
// naming its variable.
type Config struct {
	Production         bool
	Addr               string
	BaseURL            *url.URL
	RPID               string
	DatabaseURL        string // "" in development: find or start a local PostgreSQL
	MigrateDatabaseURL string
	IPRate             Rate // zero Limit: disabled
	PasskeyOptionsRate Rate // per-IP limit of the passkey options routes; zero Limit: disabled
	TrustedProxies     []netip.Prefix
	CORSOrigins        []string       // MANA_AUTH_CORS_ORIGINS: origins allowed to call with credentials
	Keys               *vault.KeyRing // MANA_AUTH_KEK or MANA_AUTH_KEKS; development: 32 zero bytes
	KeyWarning         string         // logged at every start when set
	SigningKeyPEM      string         // "": development key generated in StateDir
	AIPublicKeyPEM     string
	Argon2id           password.Params
	MaxDailySignups    int // 0: unlimited
	SMTPURL            *url.URL
	MailFrom           string
	RedisURL           *url.URL
	ServiceKey         string
	RequireEmailVerify bool
	RefreshGrace       time.Duration // MANA_AUTH_REFRESH_GRACE: manaauth.Config.RefreshGrace
	LogLevel           slog.Level
	LogJSON            bool // MANA_AUTH_LOG_FORMAT=json; the default in production
	StateDir           string
	ShutdownTimeout    time.Duration
	// DebugAddr (MANA_AUTH_DEBUG_ADDR) is a loopback address serving
	// net/http/pprof on a listener of its own; "" (the default): none.
	DebugAddr string

	// now is the clock of the auth stack (nil: time.Now), hasher the
	// password hasher's bounds (zero: password's defaults, one computation
	// per core) and admission the password requests let in at once (0:
	// what the hasher runs and queues). Tests set them; the environment
	// cannot.
	now       func() time.Time
	hasher    password.HasherConfig
	admission int
}

// Rate is a number of events per period.
type Rate struct {
	Limit  int
	Period time.Duration
}

func (r Rate) String() string {
	if r.Limit == 0 {
		return "0"
	}
	return fmt.Sprintf("%d/%s", r.Limit, map[time.Duration]string{time.Second: "s", time.Minute: "min", time.Hour: "h"}[r.Period])
}

// LoadConfig reads the configuration through getenv. In production every
// missing secret is fatal.
func LoadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	bad := func(name string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	get := func(name, def string) string {
		if v, ok := lookup(getenv, name); ok {
			return v
		}
		return def
	}

	c := Config{ShutdownTimeout: 15 * time.Second}
	switch env := get("MANA_AUTH_ENV", "development"); env {
	case "development":
	case "production":
		c.Production = true
	default:
		bad("MANA_AUTH_ENV", "%q is neither development nor production", env)
	}

	c.Addr = get("MANA_AUTH_ADDR", "127.0.0.1:8080")
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("MANA_AUTH_ADDR", "%q is not host:port: %v", c.Addr, err)
	}

	base := get("MANA_AUTH_BASE_URL", defaultBaseURL(c.Addr))
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("MANA_AUTH_BASE_URL", "%q is not an absolute http(s) URL without query or fragment", base)
	} else {
		u.Path = strings.TrimRight(u.Path, "/")
		c.BaseURL = u
		if c.Production && u.Scheme != "https" {
			bad("MANA_AUTH_BASE_URL", "%q must use https in production", base)
		}
	}

	if c.BaseURL != nil {
		c.RPID = get("WEBAUTHN_RP_ID", c.BaseURL.Hostname())
		c.RPID = strings.ToLower(c.RPID)
		host := strings.ToLower(c.BaseURL.Hostname())
		switch {
		case isIP(c.RPID) || c.RPID == "" || strings.ContainsAny(c.RPID, "/: "):
			bad("WEBAUTHN_RP_ID", "%q must be a domain name, not an IP address (set MANA_AUTH_BASE_URL to a URL with a host name, or set WEBAUTHN_RP_ID)", c.RPID)
		case host != c.RPID && !strings.HasSuffix(host, "."+c.RPID):
			bad("WEBAUTHN_RP_ID", "%q must be the host of MANA_AUTH_BASE_URL (%s) or a parent domain of it", c.RPID, host)
		}
	}

	c.DatabaseURL = get("DATABASE_URL", "")
	c.MigrateDatabaseURL = get("MIGRATE_DATABASE_URL", c.DatabaseURL)
	for _, name := range []string{"DATABASE_URL", "MIGRATE_DATABASE_URL"} {
		if v := get(name, ""); v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				bad(name, "not a postgres:// URL")
			}
		}
	}
	if c.Production && c.DatabaseURL == "" {
		bad("DATABASE_URL", "required in production (the runtime role's connection)")
	}
	if c.DatabaseURL == "" && c.MigrateDatabaseURL != "" {
		bad("MIGRATE_DATABASE_URL", "set without DATABASE_URL")
	}

	rate, err := parseRate(get("MANA_AUTH_IP_RATE", "300/min"))
	if err != nil {
		bad("MANA_AUTH_IP_RATE", "%v", err)
	}
	c.IPRate = rate
	if c.PasskeyOptionsRate, err = parseRate(get("MANA_AUTH_PASSKEY_OPTIONS_RATE", "20/min")); err != nil {
		bad("MANA_AUTH_PASSKEY_OPTIONS_RATE", "%v", err)
	}

	if v := get("MANA_AUTH_TRUSTED_PROXIES", ""); v != "" {
		p, err := web.ParsePrefixes(v)
		if err != nil {
			bad("MANA_AUTH_TRUSTED_PROXIES", "%v", err)
		}
		c.TrustedProxies = p
	}

	if v := get("MANA_AUTH_CORS_ORIGINS", ""); v != "" {
		o, err := web.ParseOrigins(v)
		if err != nil {
			bad("MANA_AUTH_CORS_ORIGINS", "%v", err)
		}
		c.CORSOrigins = o
	}

	// MANA_AUTH_KEK / MANA_AUTH_KEKS; in development a missing KEK is 32
	// zero bytes with a warning logged at every start.
	keys, warning, err := vault.KeyRingFromEnv(c.Production, func(name string) string { return get(name, "") })
	if err != nil {
		bad("MANA_AUTH_KEK", "%v", err)
	}
	c.Keys, c.KeyWarning = keys, warning

	c.SigningKeyPEM = get("MANA_AUTH_SIGNING_KEY", "")
	if c.SigningKeyPEM == "" && c.Production {
		bad("MANA_AUTH_SIGNING_KEY", "required in production: an Ed25519 private key in PEM (openssl genpkey -algorithm ed25519)")
	}
	c.AIPublicKeyPEM = get("MANA_AI_PUBLIC_KEY_PEM", "")
	if v := get("MANA_AUTH_ARGON2ID", ""); v != "" {
		p, err := password.ParseParams(v)
		if err != nil {
			bad("MANA_AUTH_ARGON2ID", "%v", err)
		}
		c.Argon2id = p
	}

	if v := get("MAX_DAILY_SIGNUPS", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad("MAX_DAILY_SIGNUPS", "%q is not a positive integer (unset it for no limit)", v)
		}
		c.MaxDailySignups = n
	}

	if v := get("SMTP_URL", ""); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			bad("SMTP_URL", "must look like smtp://user:pass@host:port or smtps://…")
		} else if st := u.Query().Get("starttls"); st != "" && st != "required" {
			bad("SMTP_URL", "starttls=%q: the only value is required", st)
		}
		c.SMTPURL = u
	}
	c.MailFrom = get("MAIL_FROM", "no-reply@localhost")
	if !strings.Contains(c.MailFrom, "@") {
		bad("MAIL_FROM", "%q is not an email address", c.MailFrom)
	}

	if v := get("REDIS_URL", ""); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			bad("REDIS_URL", "must look like redis://host:port/db or rediss://…")
		}
		c.RedisURL = u
	}
	c.ServiceKey = get("MANA_AUTH_SERVICE_KEY", "")
	if c.ServiceKey != "" && len(c.ServiceKey) < 32 {
		bad("MANA_AUTH_SERVICE_KEY", "must be at least 32 characters")
	}

	switch v := get("MANA_AUTH_REQUIRE_EMAIL_VERIFICATION", "true"); v {
	case "true", "1":
		c.RequireEmailVerify = true
	case "false", "0":
	default:
		bad("MANA_AUTH_REQUIRE_EMAIL_VERIFICATION", "%q is not true or false", v)
	}

	grace := get("MANA_AUTH_REFRESH_GRACE", defaultRefreshGrace.String())
	if d, err := time.ParseDuration(grace); err != nil || d < minRefreshGrace || d > maxRefreshGrace {
		bad("MANA_AUTH_REFRESH_GRACE", "%q is not a duration from %v to %v (e.g. 10s)", grace, minRefreshGrace, maxRefreshGrace)
	} else {
		c.RefreshGrace = d
	}

	switch v := get("MANA_AUTH_LOG_LEVEL", "info"); strings.ToLower(v) {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		bad("MANA_AUTH_LOG_LEVEL", "%q is not debug, info, warn or error", v)
	}
	defFormat := "text"
	if c.Production {
		defFormat = "json"
	}
	switch v := get("MANA_AUTH_LOG_FORMAT", defFormat); v {
	case "json":
		c.LogJSON = true
	case "text":
	default:
		bad("MANA_AUTH_LOG_FORMAT", "%q is neither json nor text", v)
	}
	if v := get("MANA_AUTH_DEBUG_ADDR", ""); v != "" {
		if err := loopbackAddr(v); err != nil {
			bad("MANA_AUTH_DEBUG_ADDR", "%v", err)
		}
		c.DebugAddr = v
	}

	c.StateDir = get("MANA_AUTH_STATE_DIR", "")
	if c.StateDir == "" {
		dir, err := defaultStateDir(getenv)
		if err != nil {
			bad("MANA_AUTH_STATE_DIR", "unset and no default: %v", err)
		}
		c.StateDir = dir
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("MANA_AUTH_STATE_DIR", "%q is not an absolute path", c.StateDir)
	}

	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// isIP reports an IP address literal (bracketed IPv6 included).
func isIP(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

// The bounds of MANA_AUTH_REFRESH_GRACE. At least a second, so two tabs
// refreshing at once do not sign each other out; at most a minute, so a
// stolen refresh token that was already used is caught as a reuse soon.
const (
	defaultRefreshGrace = 10 * time.Second
	minRefreshGrace     = time.Second
	maxRefreshGrace     = time.Minute
)

// defaultBaseURL is the base URL when MANA_AUTH_BASE_URL is unset: plain
// http on the listen address's port, with its host when it names one and
// localhost when it is a wildcard or loopback address (a browser treats
// localhost as a secure context, and WebAuthn needs a name, not an
// address). An address that cannot be parsed gives the documented
// http://localhost:8080; MANA_AUTH_ADDR reports it.
func defaultBaseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://localhost:8080"
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && (ip.IsLoopback() || ip.IsUnspecified())) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// lookup treats an empty variable like an unset one.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := strings.TrimSpace(getenv(name))
	return v, v != ""
}

func parseRate(s string) (Rate, error) {
	if s == "0" {
		return Rate{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	limit, err := strconv.Atoi(n)
	if !ok || err != nil || limit <= 0 {
		return Rate{}, fmt.Errorf("%q is not N/unit (e.g. 300/min) or 0", s)
	}
	periods := map[string]time.Duration{"s": time.Second, "sec": time.Second, "second": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "h": time.Hour, "hour": time.Hour}
	p, ok := periods[unit]
	if !ok {
		return Rate{}, fmt.Errorf("%q: unit must be s, min or h", s)
	}
	return Rate{Limit: limit, Period: p}, nil
}

func defaultStateDir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "mana-auth"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		home = h
	}
	return filepath.Join(home, ".local", "state", "mana-auth"), nil
}

// loopbackAddr accepts host:port whose host is a loopback address or
// localhost: the profiler shows the process's memory and stacks, so it is
// never served beyond this machine.
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return nil
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	return fmt.Errorf("%q: the debug listener serves only loopback (127.0.0.1, ::1 or localhost)", addr)
}
