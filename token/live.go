package token

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
)

// SessionChecker reports whether a session may still be used (not
// revoked, not expired, its account not disabled); manaauth.Service
// implements it. An error means it could not tell (the database is down)
// and must never be read as "not live".
type SessionChecker interface {
	SessionActive(ctx context.Context, sessionID uuid.UUID) (bool, error)
}

// LiveSessionsConfig configures NewLiveSessions.
type LiveSessionsConfig struct {
	Checker SessionChecker // required
	// TTL is how long an answer is reused; default and maximum 5 s
	// (api.md: a revoked session is refused within 5 seconds on every
	// instance).
	TTL time.Duration
	// MaxEntries bounds the cache; default 100,000 sessions (about 6 MiB).
	MaxEntries int
	Now        func() time.Time // default time.Now
}

// LiveSessions is the live-session check of the routes that guard secrets
// (the vault, the grant, passkey and MFA management, sessions). Access
// tokens are stateless, so a revoked session's token verifies until it
// expires; behind this check it is refused (401 TOKEN_INVALID) within TTL
// on every instance. Answers are cached in the process for TTL, so a warm
// path reads no database per request. Safe for concurrent use.
type LiveSessions struct {
	checker SessionChecker
	ttl     time.Duration
	max     int
	now     func() time.Time

	mu    sync.Mutex
	cache map[uuid.UUID]liveEntry
}

type liveEntry struct {
	live bool
	at   time.Time
}

// MaxLiveTTL is the longest a live-session answer is reused.
const MaxLiveTTL = 5 * time.Second

// NewLiveSessions validates cfg.
func NewLiveSessions(cfg LiveSessionsConfig) (*LiveSessions, error) {
	switch {
	case cfg.Checker == nil:
		return nil, errors.New("token: LiveSessionsConfig.Checker is required")
	case cfg.TTL < 0 || cfg.TTL > MaxLiveTTL:
		return nil, errors.New("token: LiveSessionsConfig.TTL must be between 0 (default 5s) and 5s")
	case cfg.MaxEntries < 0:
		return nil, errors.New("token: LiveSessionsConfig.MaxEntries must not be negative")
	}
	l := &LiveSessions{checker: cfg.Checker, ttl: cfg.TTL, max: cfg.MaxEntries, now: cfg.Now,
		cache: make(map[uuid.UUID]liveEntry)}
	if l.ttl == 0 {
		l.ttl = MaxLiveTTL
	}
	if l.max == 0 {
		l.max = 100_000
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// Check answers nil when the session is live.
//
// Errors: TOKEN_INVALID (revoked, expired, account disabled),
// SERVICE_UNAVAILABLE (the checker could not tell).
func (l *LiveSessions) Check(ctx context.Context, sessionID uuid.UUID) error {
	now := l.now()
	l.mu.Lock()
	e, ok := l.cache[sessionID]
	l.mu.Unlock()
	if !ok || now.Sub(e.at) >= l.ttl || now.Before(e.at) {
		live, err := l.checker.SessionActive(ctx, sessionID)
		if err != nil {
			return err
		}
		e = liveEntry{live: live, at: now}
		l.store(sessionID, e)
	}
	if !e.live {
		return autherr.New(autherr.TokenInvalid, "session revoked")
	}
	return nil
}

// Forget drops what the cache knows of a session, so that the next request
// asks again: the instance that revokes a session calls it, and refuses
// the session's tokens at once instead of within TTL.
func (l *LiveSessions) Forget(sessionID uuid.UUID) {
	l.mu.Lock()
	delete(l.cache, sessionID)
	l.mu.Unlock()
}

func (l *LiveSessions) store(id uuid.UUID, e liveEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.cache) >= l.max {
		// Full: drop what has expired; if nothing has, start over. Either
		// way a dropped entry only costs one more database read.
		for k, v := range l.cache {
			if e.at.Sub(v.at) >= l.ttl {
				delete(l.cache, k)
			}
		}
		if len(l.cache) >= l.max {
			clear(l.cache)
		}
	}
	l.cache[id] = e
}

// Middleware refuses requests whose token's session is no longer live. It
// goes after Middleware (it reads the claims from the context), and
// answers through errs: 401 TOKEN_INVALID with
// `WWW-Authenticate: Bearer error="invalid_token"`, or 503 when the check
// cannot be made.
func (l *LiveSessions) Middleware(errs autherr.Writer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, sid, err := SessionFromRequest(r)
			if err == nil {
				err = l.Check(r.Context(), sid)
			}
			if err != nil {
				if autherr.CodeOf(err) == autherr.TokenInvalid {
					w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				}
				errs.Write(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
