package manaauth

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	Logger *slog.Logger
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when finding the client's IP; none by default.
	TrustedProxies []netip.Prefix
	// IPLimiter, when set, limits login, register, forgot-password,
	// resend-verification, reset-password and verify-email per client IP
	// (429 RATE_LIMITED).
	IPLimiter lockout.Limiter
	// Observe is passed to the error writer (metrics).
	Observe func(e *autherr.Error, status int)
	// TrustedOrigins are the origins ("https://app.example.com") whose
	// pages may make cookie-authenticated calls (session-to-token, logout
	// with the cookie); default the origin of the service's base URL. A
	// cross-origin call from elsewhere is refused (FORBIDDEN, reason
	// "origin") before its CSRF token is even looked at.
	TrustedOrigins []string
	// Live is the live-session check of the /sessions routes; nil: one of
	// the handler's own on svc (token.NewLiveSessions with its defaults).
	// Share one between the handlers of a server so that a revocation
	// seen by one is seen by all.
	Live *token.LiveSessions
}

// Handler serves api.md's Auth section; mount it under /api/v1/auth with
// http.StripPrefix.
type Handler struct{ mux *web.Mux }

// Routes lists the patterns the handler serves, relative to its mount point.
func (h *Handler) Routes() []string { return h.mux.Routes() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type authHandler struct {
	svc  *Service
	opts HandlerOptions
	errs autherr.Writer
}

// NewHandler returns the HTTP handler of svc.
func NewHandler(svc *Service, opts HandlerOptions) *Handler {
	if opts.Logger == nil {
		opts.Logger = svc.logger
	}
	if len(opts.TrustedOrigins) == 0 {
		opts.TrustedOrigins = []string{Origin(svc.cfg.Links.BaseURL)}
	}
	for i, o := range opts.TrustedOrigins {
		opts.TrustedOrigins[i] = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
	}
	if opts.Live == nil {
		live, err := token.NewLiveSessions(token.LiveSessionsConfig{Checker: svc, Now: svc.now})
		if err != nil {
			panic(err) // unreachable: the config is valid by construction
		}
		opts.Live = live
	}
	a := &authHandler{svc: svc, opts: opts, errs: autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}}
	m := web.NewMux(a.errs)
	bearer := token.MiddlewareWith(svc.cfg.Tokens, a.errs)
	live := func(h http.Handler) http.Handler { return bearer(opts.Live.Middleware(a.errs)(h)) }
	limited := a.limitIP
	ok, created, accepted := http.StatusOK, http.StatusCreated, http.StatusAccepted
	m.Handle("POST /register", web.Endpoint(created, a.register), limited)
	m.Handle("POST /login", web.Endpoint(ok, a.login), limited)
	m.Handle("POST /logout", web.EndpointOptional(http.StatusNoContent, a.logout))
	m.Handle("POST /session-to-token", web.Endpoint(ok, a.sessionToToken))
	m.Handle("POST /refresh", web.Endpoint(ok, a.refresh))
	m.Handle("POST /validate", a.validate)
	m.Handle("POST /verify-email", web.Endpoint(ok, a.verifyEmail), limited)
	m.Handle("POST /resend-verification", web.Endpoint(accepted, a.resendVerification), limited)
	m.Handle("POST /forgot-password", web.Endpoint(accepted, a.forgotPassword), limited)
	m.Handle("POST /reset-password", web.Endpoint(ok, a.resetPassword), limited)
	m.Handle("GET /profile", web.Endpoint(ok, a.profile), bearer)
	m.Handle("POST /profile", web.Endpoint(ok, a.updateProfile), bearer)
	m.Handle("POST /change-email", web.Endpoint(accepted, a.changeEmail), bearer)
	m.Handle("POST /change-password", web.Endpoint(ok, a.changePassword), bearer)
	m.Handle("DELETE /account", web.Endpoint(http.StatusNoContent, a.deleteAccount), bearer)
	m.Handle("GET /security-events", web.Endpoint(ok, a.securityEvents), bearer)
	m.Handle("GET /signup-status", web.Endpoint(ok, a.signupStatus))
	m.Handle("GET /sessions", web.Endpoint(ok, a.sessions), live)
	m.Handle("DELETE /sessions/{id}", web.Endpoint(http.StatusNoContent, a.revokeSession), live)
	m.Handle("POST /sessions/revoke-others", web.Endpoint(http.StatusNoContent, a.revokeOthers), live)
	return &Handler{mux: m}
}

func (a *authHandler) client(r *http.Request) Client {
	return Client{IP: web.ClientIP(r, a.opts.TrustedProxies), UserAgent: web.UserAgent(r)}
}

// limitIP applies the per-IP limit before the handler runs.
func (a *authHandler) limitIP(next http.Handler) http.Handler {
	if a.opts.IPLimiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := web.ClientIP(r, a.opts.TrustedProxies)
		key := "ip:unknown"
		if ip.IsValid() {
			key = "ip:" + ip.String()
		}
		ok, retry, err := a.opts.IPLimiter.Allow(r.Context(), key)
		if err != nil {
			a.errs.Write(w, r, err)
			return
		}
		if !ok {
			a.errs.Write(w, r, lockout.LimitError(retry))
			return
		}
		next.ServeHTTP(w, r)
	})
}

type emailPassword struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

type registerIn emailPassword

func (in registerIn) Validate() error {
	return web.Required("email", in.Email, "password", in.Password)
}

type loginIn emailPassword

func (in loginIn) Validate() error { return web.Required("email", in.Email) }

type userBody struct {
	User         User   `json:"user"`
	AccessToken  string `json:"accessToken,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	TokenType    string `json:"tokenType,omitempty"`
	ExpiresIn    int    `json:"expiresIn,omitempty"`
}

var okBody = map[string]bool{"ok": true}

func (a *authHandler) register(w http.ResponseWriter, r *http.Request, in registerIn) (any, error) {
	res, err := a.svc.Register(r.Context(), RegisterInput(in), a.client(r))
	if err != nil {
		return nil, err
	}
	body := userBody{User: res.User}
	if p := res.Tokens; p != nil {
		a.svc.setCookie(w, p)
		body.AccessToken, body.RefreshToken, body.TokenType, body.ExpiresIn = p.AccessToken, p.RefreshToken, p.TokenType, p.ExpiresIn
	}
	return body, nil
}

func (a *authHandler) login(w http.ResponseWriter, r *http.Request, in loginIn) (any, error) {
	res, err := a.svc.Login(r.Context(), in.Email, in.Password, a.client(r))
	if err != nil {
		return nil, err
	}
	if res.MFA != nil {
		return mfaBody(res.MFA), nil
	}
	a.svc.setCookie(w, res.Tokens)
	return res.Tokens, nil
}

type refreshIn struct {
	RefreshToken string `json:"refreshToken"`
}

func (in refreshIn) Validate() error { return web.Required("refreshToken", in.RefreshToken) }

func (a *authHandler) logout(w http.ResponseWriter, r *http.Request, in struct {
	RefreshToken string `json:"refreshToken"`
}) (any, error) {
	uid, sid, err := a.caller(r)
	if err != nil {
		return nil, err
	}
	if err := a.svc.Logout(r.Context(), uid, sid, in.RefreshToken, a.client(r)); err != nil {
		return nil, err
	}
	a.opts.Live.Forget(sid)
	a.svc.clearCookie(w)
	return nil, nil
}

func (a *authHandler) sessionToToken(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, autherr.New(autherr.Unauthorized, "no session cookie")
	}
	if _, _, err := a.cookieSession(r, ck.Value); err != nil {
		return nil, err
	}
	return a.svc.SessionToToken(r.Context(), ck.Value)
}

func (a *authHandler) refresh(_ http.ResponseWriter, r *http.Request, in refreshIn) (any, error) {
	return a.svc.Refresh(r.Context(), in.RefreshToken, a.client(r))
}

type tokenIn struct {
	Token string `json:"token"`
}

func (in tokenIn) Validate() error { return web.Required("token", in.Token) }

// validate answers 200 {valid:true, claims} or 401 {valid:false,
// error:{…}}: the error envelope with the extra "valid" field api.md asks
// for.
func (a *authHandler) validate(w http.ResponseWriter, r *http.Request) error {
	var in tokenIn
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	c, err := a.svc.cfg.Tokens.Verify(in.Token)
	if err != nil {
		e := autherr.Classify(err)
		if e.Status() != http.StatusUnauthorized {
			return err
		}
		a.errs.Log(r, err)
		msg := "token is invalid"
		if e.Code == autherr.TokenExpired {
			msg = "token has expired"
		}
		w.Header().Set("Cache-Control", "no-store")
		return web.JSON(w, http.StatusUnauthorized, map[string]any{"valid": false, "error": map[string]any{
			"code": e.Code, "message": msg, "requestId": w.Header().Get(autherr.RequestIDHeader)}})
	}
	return web.JSON(w, http.StatusOK, map[string]any{"valid": true, "claims": c})
}

func (a *authHandler) verifyEmail(_ http.ResponseWriter, r *http.Request, in tokenIn) (any, error) {
	u, err := a.svc.VerifyEmail(r.Context(), in.Token, a.client(r))
	return userBody{User: u}, err
}

type emailIn struct {
	Email string `json:"email"`
}

func (a *authHandler) resendVerification(_ http.ResponseWriter, r *http.Request, in emailIn) (any, error) {
	return okBody, a.svc.ResendVerification(r.Context(), in.Email)
}

func (a *authHandler) forgotPassword(_ http.ResponseWriter, r *http.Request, in emailIn) (any, error) {
	return okBody, a.svc.ForgotPassword(r.Context(), in.Email, a.client(r))
}

type resetIn struct {
	Token       string `json:"token"`
	NewPassword string `json:"newPassword"`
}

func (in resetIn) Validate() error {
	return web.Required("token", in.Token, "newPassword", in.NewPassword)
}

func (a *authHandler) resetPassword(_ http.ResponseWriter, r *http.Request, in resetIn) (any, error) {
	return okBody, a.svc.ResetPassword(r.Context(), in.Token, in.NewPassword, a.client(r))
}

func (a *authHandler) profile(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	u, err := a.svc.Profile(r.Context(), uid)
	return userBody{User: u}, err
}

type profileIn struct {
	Name  *string `json:"name"`
	Image *string `json:"image"`
}

func (a *authHandler) updateProfile(_ http.ResponseWriter, r *http.Request, in profileIn) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	u, err := a.svc.UpdateProfile(r.Context(), uid, ProfileUpdate(in), a.client(r))
	return userBody{User: u}, err
}

type changeEmailIn struct {
	NewEmail string `json:"newEmail"`
	Password string `json:"password"`
}

func (in changeEmailIn) Validate() error {
	return web.Required("newEmail", in.NewEmail, "password", in.Password)
}

func (a *authHandler) changeEmail(_ http.ResponseWriter, r *http.Request, in changeEmailIn) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	return okBody, a.svc.ChangeEmail(r.Context(), uid, in.NewEmail, in.Password, a.client(r))
}

type changePasswordIn struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

func (in changePasswordIn) Validate() error {
	return web.Required("currentPassword", in.CurrentPassword, "newPassword", in.NewPassword)
}

func (a *authHandler) changePassword(_ http.ResponseWriter, r *http.Request, in changePasswordIn) (any, error) {
	uid, sid, err := token.SessionFromRequest(r)
	if err != nil {
		return nil, err
	}
	return okBody, a.svc.ChangePassword(r.Context(), uid, sid, in.CurrentPassword, in.NewPassword, a.client(r))
}

type passwordIn struct {
	Password string `json:"password"`
}

func (in passwordIn) Validate() error { return web.Required("password", in.Password) }

func (a *authHandler) deleteAccount(w http.ResponseWriter, r *http.Request, in passwordIn) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	if err := a.svc.DeleteAccount(r.Context(), uid, in.Password, a.client(r)); err != nil {
		return nil, err
	}
	a.svc.clearCookie(w)
	return nil, nil
}

func (a *authHandler) securityEvents(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	limit, before := 50, int64(0)
	bad := map[string]string{}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			bad["limit"] = "an integer from 1 to 100"
		}
		limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			bad["before"] = "a positive event id (the nextBefore of the previous page)"
		}
		before = n
	}
	if len(bad) > 0 {
		return nil, web.Invalid(bad)
	}
	events, next, err := a.svc.SecurityEvents(r.Context(), uid, before, limit)
	if err != nil {
		return nil, err
	}
	if events == nil {
		events = []SecurityEvent{}
	}
	body := map[string]any{"events": events}
	if next != 0 {
		body["nextBefore"] = next
	}
	return body, nil
}

func (a *authHandler) signupStatus(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	return a.svc.Signups(r.Context())
}

func (a *authHandler) sessions(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, sid, err := token.SessionFromRequest(r)
	if err != nil {
		return nil, err
	}
	list, err := a.svc.Sessions(r.Context(), uid, sid)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []Session{}
	}
	return map[string]any{"sessions": list}, nil
}

func (a *authHandler) revokeSession(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, _, err := token.SessionFromRequest(r)
	if err != nil {
		return nil, err
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return nil, autherr.New(autherr.NotFound, "no such session")
	}
	if err := a.svc.RevokeSession(r.Context(), uid, id, a.client(r)); err != nil {
		return nil, err
	}
	a.opts.Live.Forget(id)
	return nil, nil
}

func (a *authHandler) revokeOthers(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, sid, err := token.SessionFromRequest(r)
	if err != nil {
		return nil, err
	}
	_, err = a.svc.RevokeOtherSessions(r.Context(), uid, sid, a.client(r))
	return nil, err
}
