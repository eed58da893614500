package token

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// JWKS defaults.
const (
	DefaultJWKSMinRefresh = time.Minute
	DefaultJWKSMaxAge     = 5 * time.Minute
	DefaultJWKSTimeout    = 10 * time.Second
	// MaxJWKSBytes bounds the JWKS document read.
	MaxJWKSBytes = 1 << 20
)

// JWKSConfig configures a JWKS.
type JWKSConfig struct {
	// URL of the auth server's key set, e.g.
	// https://auth.example.com/.well-known/jwks.json. Required. It must be
	// https, or http to a loopback address (a key set fetched over plain
	// HTTP from elsewhere could be swapped in transit, and with it every
	// token), unless AllowInsecureHTTP is set.
	URL               string
	AllowInsecureHTTP bool
	// Client fetches the set; nil: a client of its own with Timeout.
	Client *http.Client
	// Timeout bounds one fetch; 0: DefaultJWKSTimeout.
	Timeout time.Duration
	// MinRefresh is the least time between two fetches, whatever asks for
	// them (a stale set, or a kid the set does not hold — which anyone can
	// send): at most one fetch per MinRefresh. 0: DefaultJWKSMinRefresh.
	MinRefresh time.Duration
	// MaxAge is how long a fetched set is used before it is fetched again
	// (the server's JWKS is served with max-age=300); a key removed from
	// the server's set stops verifying within MaxAge + MinRefresh. When a
	// refresh fails, the keys already known keep verifying (logged). 0:
	// DefaultJWKSMaxAge.
	MaxAge time.Duration
	Logger *slog.Logger     // nil: slog.Default()
	Now    func() time.Time // nil: time.Now
	// Registerer receives the fetch counter {result="ok"|"error"}; nil
	// leaves it unregistered.
	Registerer prometheus.Registerer
	// MetricName names that counter; "" means
	// mana_auth_jwks_fetches_total.
	MetricName string
}

// JWKS is a KeySource that fetches the auth server's Ed25519 keys from its
// JWKS URL and caches them, with a bounded refresh. It is safe for
// concurrent use; concurrent misses share one fetch.
type JWKS struct {
	url        string
	client     *http.Client
	timeout    time.Duration
	minRefresh time.Duration
	maxAge     time.Duration
	logger     *slog.Logger
	now        func() time.Time
	fetches    *prometheus.CounterVec

	fetchMu sync.Mutex // held during a fetch: one at a time

	mu          sync.Mutex // guards the fields below
	keys        map[string]ed25519.PublicKey
	fetchedAt   time.Time // last successful fetch
	lastAttempt time.Time
	lastErr     error // of the last attempt
}

// NewJWKS validates cfg. It does not fetch: the first VerifyKey does.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("token: JWKS URL %q is not an http(s) URL", cfg.URL)
	}
	if u.Scheme == "http" && !cfg.AllowInsecureHTTP && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("token: JWKS URL %q: plain http is only accepted to a loopback address; use https", cfg.URL)
	}
	if cfg.Timeout < 0 || cfg.MinRefresh < 0 || cfg.MaxAge < 0 {
		return nil, errors.New("token: JWKSConfig durations must not be negative")
	}
	j := &JWKS{url: u.String(), client: cfg.Client, timeout: cfg.Timeout, minRefresh: cfg.MinRefresh,
		maxAge: cfg.MaxAge, logger: cfg.Logger, now: cfg.Now,
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: cmp.Or(cfg.MetricName, "mana_auth_jwks_fetches_total"),
			Help: "Fetches of the auth server's JWKS by result (ok, error).",
		}, []string{"result"}),
	}
	if j.timeout == 0 {
		j.timeout = DefaultJWKSTimeout
	}
	if j.client == nil {
		j.client = &http.Client{Timeout: j.timeout}
	}
	if j.minRefresh == 0 {
		j.minRefresh = DefaultJWKSMinRefresh
	}
	if j.maxAge == 0 {
		j.maxAge = DefaultJWKSMaxAge
	}
	if j.logger == nil {
		j.logger = slog.Default()
	}
	if j.now == nil {
		j.now = time.Now
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(j.fetches); err != nil {
			return nil, fmt.Errorf("token: register metrics: %w", err)
		}
	}
	return j, nil
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// lookup reads the cache: the key, and whether the set is fresh.
func (j *JWKS) lookup(kid string, now time.Time) (ed25519.PublicKey, bool, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	k, ok := j.keys[kid]
	fresh := !j.fetchedAt.IsZero() && now.Sub(j.fetchedAt) < j.maxAge
	return k, ok, fresh
}

// VerifyKey returns the key with the given kid. It fetches the set when it
// is stale or does not hold kid, at most once per MinRefresh. Errors:
// ErrUnknownKey when the set (as last fetched) does not hold kid; an
// infrastructure error when the set could not be fetched and kid is not
// known from an earlier fetch.
func (j *JWKS) VerifyKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok, fresh := j.lookup(kid, j.now()); ok && fresh {
		return k, nil
	}
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	now := j.now()
	k, ok, fresh := j.lookup(kid, now) // another caller may have fetched meanwhile
	if ok && fresh {
		return k, nil
	}
	j.mu.Lock()
	allowed := j.lastAttempt.IsZero() || now.Sub(j.lastAttempt) >= j.minRefresh
	lastErr := j.lastErr
	if allowed {
		j.lastAttempt = now
	}
	j.mu.Unlock()
	if !allowed {
		switch {
		case ok:
			return k, nil // stale, but the next refresh is not due yet
		case lastErr != nil:
			return nil, fmt.Errorf("token: JWKS %s (last fetch failed, next attempt within %v): %w", j.url, j.minRefresh, lastErr)
		default:
			return nil, ErrUnknownKey
		}
	}

	keys, err := j.fetch(ctx)
	j.mu.Lock()
	j.lastErr = err
	if err == nil {
		j.keys, j.fetchedAt = keys, now
	}
	j.mu.Unlock()
	if err != nil {
		j.fetches.WithLabelValues("error").Inc()
		j.logger.LogAttrs(ctx, slog.LevelWarn, "token: JWKS fetch failed",
			slog.String("url", j.url), slog.Bool("kid_known", ok), slog.Any("err", err))
		if ok {
			return k, nil // keep verifying with what we know
		}
		return nil, err
	}
	j.fetches.WithLabelValues("ok").Inc()
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// jwk is the part of a JSON Web Key a verifier reads.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// fetch GETs the set; it runs to its own timeout even when ctx, the
// request that needed it, is cancelled, so that one impatient caller does
// not leave the others without keys until the next refresh.
func (j *JWKS) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, fmt.Errorf("token: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token: fetch JWKS: %w", err)
	}
	defer func() {
		if cerr := resp.Body.Close(); cerr != nil {
			j.logger.LogAttrs(ctx, slog.LevelDebug, "token: close JWKS response", slog.Any("err", cerr))
		}
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token: fetch JWKS: HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("token: read JWKS: %w", err)
	}
	if len(body) > MaxJWKSBytes {
		return nil, fmt.Errorf("token: JWKS larger than %d bytes", MaxJWKSBytes)
	}
	return parseJWKS(ctx, body, j.logger)
}

// parseJWKS reads the Ed25519 signature keys of a JWKS document. Keys of
// other types or uses are skipped (a set may hold them); a malformed
// Ed25519 key, or a kid held by two different keys, is skipped with a
// warning. A set without any usable key is an error.
func parseJWKS(ctx context.Context, body []byte, logger *slog.Logger) (map[string]ed25519.PublicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("token: JWKS is not a JSON key set: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	dropped := map[string]bool{}
	for i, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "EdDSA" && k.Alg != "Ed25519") {
			logger.LogAttrs(ctx, slog.LevelDebug, "token: JWKS key skipped (not an Ed25519 signature key)",
				slog.Int("index", i), slog.String("kty", k.Kty), slog.String("crv", k.Crv), slog.String("kid", k.Kid))
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize || !validKID(k.Kid) {
			logger.LogAttrs(ctx, slog.LevelWarn, "token: JWKS key skipped (malformed Ed25519 key or kid)",
				slog.Int("index", i), slog.String("kid", k.Kid))
			continue
		}
		if dropped[k.Kid] {
			continue
		}
		if have, dup := keys[k.Kid]; dup {
			if !have.Equal(ed25519.PublicKey(x)) {
				logger.LogAttrs(ctx, slog.LevelWarn, "token: JWKS kid held by two different keys; both skipped",
					slog.String("kid", k.Kid))
				delete(keys, k.Kid)
				dropped[k.Kid] = true
			}
			continue
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, errors.New("token: JWKS holds no usable Ed25519 signature key")
	}
	return keys, nil
}
