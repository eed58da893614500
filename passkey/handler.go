package passkey

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Tokens verifies the Bearer access token of the management routes
	// (register, list, rename, delete). Required with a Service.
	Tokens token.Verifier
	// Live is the live-session check of the management routes: a revoked
	// session's token is refused there within its cache time. Required
	// with a Service; share the server's one (see manaauth's
	// HandlerOptions.Live).
	Live *token.LiveSessions
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when finding the client's IP (the key of the options limit and of
	// unknown credentials' failures); none by default.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger // nil: the service's logger (slog.Default() without one)
	// Observe is passed to the error writer (metrics).
	Observe func(e *autherr.Error, status int)
}

// Handler serves api.md's Passkeys section; mount it under
// /api/v1/auth/passkeys with http.StripPrefix.
type Handler struct{ mux *web.Mux }

// Routes lists the patterns the handler serves, relative to its mount
// point. The collection root is "/{$}": a host that also answers the
// prefix without its trailing slash rewrites that path to "/".
func (h *Handler) Routes() []string { return h.mux.Routes() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type passkeyHandler struct {
	svc  *Service
	opts HandlerOptions
}

// NewHandler returns the HTTP handler of svc. A nil svc is a server where
// passkeys are not configured (see SecureOrigin): GET /capability answers
// {available: false} and every other route 404 NOT_FOUND, so a client
// that asks first never offers the button, and one that does not gets an
// honest answer rather than a broken ceremony.
func NewHandler(svc *Service, opts HandlerOptions) (*Handler, error) {
	if opts.Logger == nil && svc != nil {
		opts.Logger = svc.logger
	}
	errs := autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}
	m := web.NewMux(errs)
	ok, created, none := http.StatusOK, http.StatusCreated, http.StatusNoContent
	if svc == nil {
		m.Handle("GET /capability", web.Endpoint(ok, func(http.ResponseWriter, *http.Request, web.NoBody) (any, error) {
			return capability{Available: false}, nil
		}))
		off := func(http.ResponseWriter, *http.Request) error {
			return autherr.New(autherr.NotFound, "passkeys are not available on this server")
		}
		for _, p := range managed {
			m.Handle(p, off)
		}
		m.Handle("POST /authenticate/options", off)
		m.Handle("POST /authenticate/verify", off)
		return &Handler{mux: m}, nil
	}
	switch {
	case opts.Tokens == nil:
		return nil, errors.New("passkey: HandlerOptions.Tokens is required")
	case opts.Live == nil:
		return nil, errors.New("passkey: HandlerOptions.Live is required")
	}
	h := &passkeyHandler{svc: svc, opts: opts}
	bearer := token.MiddlewareWith(opts.Tokens, errs)
	live := opts.Live.Middleware(errs)
	m.Handle("GET /capability", web.Endpoint(ok, func(http.ResponseWriter, *http.Request, web.NoBody) (any, error) {
		return capability{Available: true}, nil
	}))
	m.Handle("POST /register/options", web.Endpoint(ok, h.registerOptions), bearer, live)
	m.Handle("POST /register/verify", web.Endpoint(created, h.registerVerify), bearer, live)
	m.Handle("POST /authenticate/options", web.EndpointOptional(ok, h.signInOptions))
	m.Handle("POST /authenticate/verify", h.signInVerify)
	m.Handle("GET /{$}", web.Endpoint(ok, h.list), bearer, live)
	m.Handle("PATCH /{id}", web.Endpoint(ok, h.rename), bearer, live)
	m.Handle("DELETE /{id}", web.Endpoint(none, h.delete), bearer, live)
	return &Handler{mux: m}, nil
}

// managed are the routes behind the Bearer token and the live-session
// check, as the unconfigured handler mounts them too.
var managed = []string{"POST /register/options", "POST /register/verify", "GET /{$}", "PATCH /{id}", "DELETE /{id}"}

type capability struct {
	Available bool `json:"available"`
}

func (h *passkeyHandler) client(r *http.Request) manaauth.Client {
	return manaauth.Client{IP: web.ClientIP(r, h.opts.TrustedProxies), UserAgent: web.UserAgent(r)}
}

// caller is the user and session of the access token.
func caller(r *http.Request) (userID, sessionID uuid.UUID, err error) {
	return token.SessionFromRequest(r)
}

func (h *passkeyHandler) registerOptions(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, sid, err := caller(r)
	if err != nil {
		return nil, err
	}
	return h.svc.BeginRegistration(r.Context(), uid, sid, h.client(r))
}

// registerIn is the body of POST /register/verify.
type registerIn struct {
	ChallengeID string          `json:"challengeId"`
	Credential  json.RawMessage `json:"credential"`
	Name        *string         `json:"name"`
}

func (in registerIn) Validate() error {
	bad := challengeFields(in.ChallengeID, in.Credential)
	if in.Name != nil {
		if _, err := ValidName(*in.Name); err != nil {
			bad["name"] = err.Error()
		}
	}
	if len(bad) > 0 {
		return web.Invalid(bad)
	}
	return nil
}

// challengeFields checks the two fields every verify body has.
func challengeFields(challengeID string, credential json.RawMessage) map[string]string {
	bad := map[string]string{}
	if challengeID == "" {
		bad["challengeId"] = "required"
	} else if _, err := uuid.Parse(challengeID); err != nil || len(challengeID) != 36 {
		bad["challengeId"] = "not a challenge id"
	}
	if len(credential) == 0 || string(credential) == "null" {
		bad["credential"] = "required"
	}
	return bad
}

type passkeyBody struct {
	Passkey Passkey `json:"passkey"`
}

func (h *passkeyHandler) registerVerify(_ http.ResponseWriter, r *http.Request, in registerIn) (any, error) {
	uid, sid, err := caller(r)
	if err != nil {
		return nil, err
	}
	p, err := h.svc.FinishRegistration(r.Context(), Registration{UserID: uid, SessionID: sid,
		ChallengeID: uuid.MustParse(in.ChallengeID), Credential: in.Credential, Name: in.Name, Client: h.client(r)})
	if err != nil {
		return nil, err
	}
	return passkeyBody{p}, nil
}

type signInOptionsIn struct {
	Email string `json:"email"`
}

func (h *passkeyHandler) signInOptions(_ http.ResponseWriter, r *http.Request, in signInOptionsIn) (any, error) {
	return h.svc.BeginSignIn(r.Context(), in.Email, h.client(r))
}

// signInIn is the body of POST /authenticate/verify.
type signInIn struct {
	ChallengeID string          `json:"challengeId"`
	Credential  json.RawMessage `json:"credential"`
}

func (in signInIn) Validate() error {
	if bad := challengeFields(in.ChallengeID, in.Credential); len(bad) > 0 {
		return web.Invalid(bad)
	}
	return nil
}

func (h *passkeyHandler) signInVerify(w http.ResponseWriter, r *http.Request) error {
	var in signInIn
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	res, err := h.svc.FinishSignIn(r.Context(), uuid.MustParse(in.ChallengeID), in.Credential, h.client(r))
	if err != nil {
		return err
	}
	if res.MFA != nil {
		return manaauth.WriteMFAChallenge(w, res.MFA)
	}
	return h.svc.accounts.WriteSignIn(w, res.Tokens)
}

type listBody struct {
	Passkeys []Passkey `json:"passkeys"`
}

func (h *passkeyHandler) list(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, _, err := caller(r)
	if err != nil {
		return nil, err
	}
	ps, err := h.svc.List(r.Context(), uid)
	if err != nil {
		return nil, err
	}
	return listBody{ps}, nil
}

type renameIn struct {
	Name *string `json:"name"`
}

func (in renameIn) Validate() error {
	if in.Name == nil {
		return web.Invalid(map[string]string{"name": "required"})
	}
	if _, err := ValidName(*in.Name); err != nil {
		return web.Invalid(map[string]string{"name": err.Error()})
	}
	return nil
}

// pathID is the passkey id of the path; an id that is not a UUID names
// nothing: 404 without a query.
func pathID(r *http.Request) (uuid.UUID, error) {
	raw := r.PathValue("id")
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return uuid.Nil, autherr.New(autherr.NotFound, "no such passkey")
	}
	return id, nil
}

func (h *passkeyHandler) rename(_ http.ResponseWriter, r *http.Request, in renameIn) (any, error) {
	uid, _, err := caller(r)
	if err != nil {
		return nil, err
	}
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	p, err := h.svc.Rename(r.Context(), uid, id, *in.Name, h.client(r))
	if err != nil {
		return nil, err
	}
	return passkeyBody{p}, nil
}

func (h *passkeyHandler) delete(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, _, err := caller(r)
	if err != nil {
		return nil, err
	}
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	return nil, h.svc.Delete(r.Context(), uid, id, h.client(r))
}
