package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// ServiceKeyHeader carries the service credential of POST /validate.
const ServiceKeyHeader = "X-Service-Key"

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Tokens verifies the Bearer access token of the key management
	// routes (a *token.Tokens, or a *token.Checker on a host that only
	// verifies). Required.
	Tokens token.Verifier
	// ServiceKey is the credential services present in X-Service-Key to
	// validate keys (MANA_AUTH_SERVICE_KEY in the reference server).
	// Empty: POST /validate answers 503 SERVICE_UNAVAILABLE.
	ServiceKey string
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when finding the client's IP for the security events; none by
	// default.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger // nil: the service's logger
	// Observe is passed to the error writer (metrics).
	Observe func(e *autherr.Error, status int)
}

// Handler serves api.md's API keys section; mount it under
// /api/v1/api-keys with http.StripPrefix.
type Handler struct{ mux *web.Mux }

// Routes lists the patterns the handler serves, relative to its mount
// point. The collection root is "/{$}": a host that also wants to answer
// the prefix without its trailing slash rewrites that path to "/".
func (h *Handler) Routes() []string { return h.mux.Routes() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// NewHandler returns the HTTP handler of svc: POST, GET and DELETE /{id}
// behind the Bearer token, and POST /validate behind the service
// credential, compared in constant time (a missing or wrong one is 401
// UNAUTHORIZED). A path id that is not a UUID answers 404 like an id that
// names nothing, or another user's key. Every answer carries
// Cache-Control: no-store.
func NewHandler(svc *Service, opts HandlerOptions) (*Handler, error) {
	if svc == nil {
		return nil, errors.New("apikey: NewHandler: nil *Service")
	}
	if opts.Tokens == nil {
		return nil, errors.New("apikey: HandlerOptions.Tokens is required")
	}
	if opts.Logger == nil {
		opts.Logger = svc.logger
	}
	errs := autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}
	a := &keysHandler{svc: svc, opts: opts}
	if opts.ServiceKey != "" {
		sum := sha256.Sum256([]byte(opts.ServiceKey))
		a.serviceKey = &sum
	}
	m := web.NewMux(errs)
	bearer := token.MiddlewareWith(opts.Tokens, errs)
	m.Handle("POST /{$}", web.Endpoint(http.StatusCreated, a.create), web.NoStore, bearer)
	m.Handle("GET /{$}", web.Endpoint(http.StatusOK, a.list), web.NoStore, bearer)
	m.Handle("DELETE /{id}", web.Endpoint(http.StatusNoContent, a.revoke), web.NoStore, bearer)
	m.Handle("POST /validate", a.validate, web.NoStore)
	m.NotFoundElsewhere()
	return &Handler{mux: m}, nil
}

type keysHandler struct {
	svc        *Service
	opts       HandlerOptions
	serviceKey *[32]byte // SHA-256 of HandlerOptions.ServiceKey; nil: not configured
}

func (a *keysHandler) client(r *http.Request) Client {
	return Client{IP: web.ClientIP(r, a.opts.TrustedProxies), UserAgent: web.UserAgent(r)}
}

type createIn struct {
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	ExpiresAt *string  `json:"expiresAt"`
}

func (a *keysHandler) create(_ http.ResponseWriter, r *http.Request, in createIn) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	ci := CreateInput{Name: in.Name, Scopes: in.Scopes}
	if in.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *in.ExpiresAt)
		if err != nil {
			return nil, web.Invalid(map[string]string{"expiresAt": "an RFC 3339 date-time in the future, or null"})
		}
		ci.ExpiresAt = &t
	}
	return a.svc.Create(r.Context(), uid, ci, a.client(r))
}

func (a *keysHandler) list(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	keys, err := a.svc.List(r.Context(), uid)
	return map[string]any{"apiKeys": keys}, err
}

func (a *keysHandler) revoke(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	v := r.PathValue("id")
	id, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		return nil, autherr.New(autherr.NotFound, "API key not found")
	}
	return nil, a.svc.Revoke(r.Context(), uid, id, a.client(r))
}

type validateIn struct {
	Key   string `json:"key"`
	Scope string `json:"scope"`
}

func (in validateIn) Validate() error { return web.Required("key", in.Key) }

// validateOut is the answer of POST /validate: {valid, userId, scopes}
// for a valid key, {valid:false, reason} otherwise.
type validateOut struct {
	Valid  bool       `json:"valid"`
	UserID *uuid.UUID `json:"userId,omitzero"`
	Scopes []string   `json:"scopes,omitzero"`
	Reason Reason     `json:"reason,omitempty"`
}

// validate checks the service credential before it reads the body.
func (a *keysHandler) validate(w http.ResponseWriter, r *http.Request) error {
	if a.serviceKey == nil {
		return autherr.Wrap(autherr.ServiceUnavailable, errors.New("apikey: no service key configured"),
			"API key validation is not configured on this server")
	}
	given := r.Header.Values(ServiceKeyHeader)
	if len(given) != 1 {
		return autherr.Wrap(autherr.Unauthorized, fmt.Errorf("apikey: %d %s headers", len(given), ServiceKeyHeader),
			"a service credential is required")
	}
	sum := sha256.Sum256([]byte(given[0]))
	if subtle.ConstantTimeCompare(sum[:], a.serviceKey[:]) != 1 {
		return autherr.Wrap(autherr.Unauthorized, errors.New("apikey: wrong service key"), "a service credential is required")
	}
	var in validateIn
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	v, err := a.svc.Validate(r.Context(), in.Key, in.Scope)
	if err != nil {
		return err
	}
	out := validateOut{Valid: v.Valid, Reason: v.Reason}
	if v.Valid {
		out.UserID, out.Scopes = &v.UserID, v.Scopes
		if out.Scopes == nil {
			out.Scopes = []string{}
		}
	}
	return web.JSON(w, http.StatusOK, out)
}
