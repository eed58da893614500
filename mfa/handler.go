package mfa

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Tokens verifies the Bearer access tokens of the management routes
	// (the account service's *token.Tokens); required.
	Tokens token.Verifier
	// Live is the live-session check of the management routes: a token
	// whose session was revoked is refused within its cache time. nil: one
	// of the handler's own on the account service; share the server's so
	// that a revocation seen by one handler is seen by all.
	Live *token.LiveSessions
	// TrustedProxies are the proxies whose X-Forwarded-For is believed;
	// none by default.
	TrustedProxies []netip.Prefix
	// IPLimiter, when set, limits POST /verify per client IP (429
	// RATE_LIMITED), like manaauth's login.
	IPLimiter lockout.Limiter
	Logger    *slog.Logger                       // default the service's
	Observe   func(e *autherr.Error, status int) // passed to the error writer (metrics)
}

// Handler serves api.md's Multi-factor authentication section; mount it
// under /api/v1/auth/mfa with http.StripPrefix. Every answer carries
// Cache-Control: no-store (they hold secrets, recovery codes and tokens),
// also on a host that does not wrap it in web.SecurityHeaders.
type Handler struct {
	mux *web.Mux
	h   http.Handler
}

// Routes lists the patterns the handler serves, relative to its mount
// point.
func (h *Handler) Routes() []string { return h.mux.Routes() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.h.ServeHTTP(w, r) }

type handler struct {
	svc  *Service
	opts HandlerOptions
	errs autherr.Writer
}

// NewHandler returns the HTTP handler of svc. Every route but /verify
// takes a Bearer access token whose session is live.
func NewHandler(svc *Service, opts HandlerOptions) (*Handler, error) {
	if opts.Tokens == nil {
		return nil, errors.New("mfa: HandlerOptions.Tokens is required")
	}
	if opts.Logger == nil {
		opts.Logger = svc.logger
	}
	if opts.Live == nil {
		live, err := token.NewLiveSessions(token.LiveSessionsConfig{Checker: svc.accounts, Now: svc.now})
		if err != nil {
			return nil, err
		}
		opts.Live = live
	}
	h := &handler{svc: svc, opts: opts, errs: autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}}
	m := web.NewMux(h.errs)
	bearer := token.MiddlewareWith(opts.Tokens, h.errs)
	live := func(next http.Handler) http.Handler { return bearer(opts.Live.Middleware(h.errs)(next)) }
	m.Handle("POST /totp/enroll", web.Endpoint(http.StatusOK, h.enroll), live)
	m.Handle("POST /totp/confirm", web.Endpoint(http.StatusOK, h.confirm), live)
	m.Handle("DELETE /totp", web.Endpoint(http.StatusNoContent, h.disable), live)
	m.Handle("POST /verify", h.verify, h.limitIP)
	m.Handle("GET /status", web.Endpoint(http.StatusOK, h.status), live)
	return &Handler{mux: m, h: web.NoStore(m)}, nil
}

func (h *handler) client(r *http.Request) manaauth.Client {
	return manaauth.Client{IP: web.ClientIP(r, h.opts.TrustedProxies), UserAgent: web.UserAgent(r)}
}

type enrollIn struct {
	Password string `json:"password"`
}

func (in enrollIn) Validate() error { return web.Required("password", in.Password) }

func (h *handler) enroll(_ http.ResponseWriter, r *http.Request, in enrollIn) (any, error) {
	uid, sid, err := token.SessionFromRequest(r)
	if err != nil {
		return nil, err
	}
	return h.svc.Enroll(r.Context(), uid, sid, in.Password, h.client(r))
}

type confirmIn struct {
	Code string `json:"code"`
}

func (in confirmIn) Validate() error { return web.Required("code", in.Code) }

func (h *handler) confirm(_ http.ResponseWriter, r *http.Request, in confirmIn) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	codes, err := h.svc.Confirm(r.Context(), uid, in.Code, h.client(r))
	if err != nil {
		return nil, err
	}
	return map[string]any{"recoveryCodes": codes}, nil
}

func (h *handler) disable(_ http.ResponseWriter, r *http.Request, in Proof) (any, error) {
	uid, sid, err := token.SessionFromRequest(r)
	if err != nil {
		return nil, err
	}
	return nil, h.svc.Disable(r.Context(), uid, sid, in, h.client(r))
}

// verifyIn is the body of POST /verify.
type verifyIn struct {
	MFAToken string `json:"mfaToken"`
	Proof
}

func (in verifyIn) Validate() error { return web.Required("mfaToken", in.MFAToken) }

// verify answers like POST /login: the token pair and the session cookie.
func (h *handler) verify(w http.ResponseWriter, r *http.Request) error {
	var in verifyIn
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	pair, err := h.svc.Verify(r.Context(), in.MFAToken, in.Proof, h.client(r))
	if err != nil {
		return err
	}
	return h.svc.accounts.WriteSignIn(w, pair)
}

func (h *handler) status(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	return h.svc.Status(r.Context(), uid)
}

// limitIP applies the per-IP limit before /verify runs.
func (h *handler) limitIP(next http.Handler) http.Handler {
	if h.opts.IPLimiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := web.ClientIP(r, h.opts.TrustedProxies)
		key := "ip:unknown"
		if ip.IsValid() {
			key = "ip:" + ip.String()
		}
		ok, retry, err := h.opts.IPLimiter.Allow(r.Context(), key)
		if err != nil {
			h.errs.Write(w, r, err)
			return
		}
		if !ok {
			h.errs.Write(w, r, lockout.LimitError(retry))
			return
		}
		next.ServeHTTP(w, r)
	})
}
