package manaauth

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/web"
)

// SessionCookie is the name of the web session cookie.
const SessionCookie = "mana_session"

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
}

// Handler serves api.md's Auth section; mount it under /api/v1/auth with
// http.StripPrefix.
type Handler struct {
	mux    *http.ServeMux
	routes []string
}

// Routes lists the patterns the handler serves, relative to its mount point.
func (h *Handler) Routes() []string { return h.routes }

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
	a := &authHandler{svc: svc, opts: opts, errs: autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}}
	h := &Handler{mux: http.NewServeMux()}
	bearer := MiddlewareWith(svc.cfg.Tokens, a.errs)
	handle := func(pattern string, fn web.HandlerFunc, wrap ...func(http.Handler) http.Handler) {
		var hh http.Handler = web.Handle(a.errs, fn)
		for _, m := range wrap {
			hh = m(hh)
		}
		h.mux.Handle(pattern, hh)
		h.routes = append(h.routes, pattern)
	}
	limited := a.limitIP
	handle("POST /register", a.register, limited)
	handle("POST /login", a.login, limited)
	handle("POST /logout", a.logout)
	handle("POST /session-to-token", a.sessionToToken)
	handle("POST /refresh", a.refresh)
	handle("POST /validate", a.validate)
	handle("POST /verify-email", a.verifyEmail, limited)
	handle("POST /resend-verification", a.resendVerification, limited)
	handle("POST /forgot-password", a.forgotPassword, limited)
	handle("POST /reset-password", a.resetPassword, limited)
	handle("GET /profile", a.profile, bearer)
	handle("POST /profile", a.updateProfile, bearer)
	handle("POST /change-email", a.changeEmail, bearer)
	handle("POST /change-password", a.changePassword, bearer)
	handle("DELETE /account", a.deleteAccount, bearer)
	handle("GET /security-events", a.securityEvents, bearer)
	handle("GET /signup-status", a.signupStatus)
	return h
}

func (a *authHandler) client(r *http.Request) Client {
	ua := r.UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	return Client{IP: web.ClientIP(r, a.opts.TrustedProxies), UserAgent: ua}
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

// required returns VALIDATION_FAILED naming every empty field.
func required(fields map[string]string) error {
	bad := map[string]string{}
	for name, v := range fields {
		if v == "" {
			bad[name] = "required"
		}
	}
	if len(bad) > 0 {
		return web.Invalid(bad)
	}
	return nil
}

type emailPassword struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

type userBody struct {
	User         User   `json:"user"`
	AccessToken  string `json:"accessToken,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	TokenType    string `json:"tokenType,omitempty"`
	ExpiresIn    int    `json:"expiresIn,omitempty"`
}

func (a *authHandler) register(w http.ResponseWriter, r *http.Request) error {
	var in emailPassword
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := required(map[string]string{"email": in.Email, "password": in.Password}); err != nil {
		return err
	}
	res, err := a.svc.Register(r.Context(), RegisterInput(in), a.client(r))
	if err != nil {
		return err
	}
	body := userBody{User: res.User}
	if p := res.Tokens; p != nil {
		a.setCookie(w, p)
		body.AccessToken, body.RefreshToken, body.TokenType, body.ExpiresIn = p.AccessToken, p.RefreshToken, p.TokenType, p.ExpiresIn
	}
	return web.JSON(w, http.StatusCreated, body)
}

func (a *authHandler) login(w http.ResponseWriter, r *http.Request) error {
	var in emailPassword
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := required(map[string]string{"email": in.Email}); err != nil {
		return err
	}
	p, err := a.svc.Login(r.Context(), in.Email, in.Password, a.client(r))
	if err != nil {
		return err
	}
	a.setCookie(w, p)
	return web.JSON(w, http.StatusOK, p)
}

func (a *authHandler) setCookie(w http.ResponseWriter, p *TokenPair) {
	if p.SessionCookie == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: p.SessionCookie, Path: "/", HttpOnly: true,
		Secure: a.svc.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
		MaxAge: int(a.svc.cfg.SessionTTL / time.Second),
	})
}

func (a *authHandler) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: a.svc.cfg.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// caller authenticates a route that takes the Bearer token or, failing
// that, the session cookie.
func (a *authHandler) caller(r *http.Request) (userID, sessionID uuid.UUID, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return uuid.Nil, uuid.Nil, autherr.New(autherr.Unauthorized, "authentication required")
		}
		c, err := a.svc.cfg.Tokens.Verify(strings.TrimSpace(tok))
		if err != nil {
			return uuid.Nil, uuid.Nil, err
		}
		uid, err := c.UserID()
		if err != nil {
			return uuid.Nil, uuid.Nil, autherr.Wrap(autherr.TokenInvalid, err, "invalid token")
		}
		sid, err := uuid.Parse(c.SessionID)
		if err != nil {
			return uuid.Nil, uuid.Nil, autherr.Wrap(autherr.TokenInvalid, err, "invalid token")
		}
		return uid, sid, nil
	}
	if ck, err := r.Cookie(SessionCookie); err == nil {
		return a.svc.SessionFromCookie(r.Context(), ck.Value)
	}
	return uuid.Nil, uuid.Nil, autherr.New(autherr.Unauthorized, "authentication required")
}

func (a *authHandler) logout(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		RefreshToken string `json:"refreshToken"`
	}
	if err := web.DecodeOptional(w, r, &in); err != nil {
		return err
	}
	uid, sid, err := a.caller(r)
	if err != nil {
		return err
	}
	if err := a.svc.Logout(r.Context(), uid, sid, in.RefreshToken, a.client(r)); err != nil {
		return err
	}
	a.clearCookie(w)
	web.NoContent(w)
	return nil
}

func (a *authHandler) sessionToToken(w http.ResponseWriter, r *http.Request) error {
	if err := web.DecodeOptional(w, r, &struct{}{}); err != nil {
		return err
	}
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return autherr.New(autherr.Unauthorized, "no session cookie")
	}
	p, err := a.svc.SessionToToken(r.Context(), ck.Value)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, p)
}

func (a *authHandler) refresh(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		RefreshToken string `json:"refreshToken"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := required(map[string]string{"refreshToken": in.RefreshToken}); err != nil {
		return err
	}
	p, err := a.svc.Refresh(r.Context(), in.RefreshToken, a.client(r))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, p)
}

// validate answers 200 {valid:true, claims} or 401 {valid:false,
// error:{…}}: the error envelope with the extra "valid" field api.md asks
// for.
func (a *authHandler) validate(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Token string `json:"token"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := required(map[string]string{"token": in.Token}); err != nil {
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

type tokenBody struct {
	Token string `json:"token"`
}

func (a *authHandler) verifyEmail(w http.ResponseWriter, r *http.Request) error {
	var in tokenBody
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := required(map[string]string{"token": in.Token}); err != nil {
		return err
	}
	u, err := a.svc.VerifyEmail(r.Context(), in.Token)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, userBody{User: u})
}

func (a *authHandler) resendVerification(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email string `json:"email"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := a.svc.ResendVerification(r.Context(), in.Email); err != nil {
		return err
	}
	return web.JSON(w, http.StatusAccepted, map[string]bool{"ok": true})
}

func (a *authHandler) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email string `json:"email"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := a.svc.ForgotPassword(r.Context(), in.Email, a.client(r)); err != nil {
		return err
	}
	return web.JSON(w, http.StatusAccepted, map[string]bool{"ok": true})
}

func (a *authHandler) resetPassword(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Token       string `json:"token"`
		NewPassword string `json:"newPassword"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := required(map[string]string{"token": in.Token, "newPassword": in.NewPassword}); err != nil {
		return err
	}
	if err := a.svc.ResetPassword(r.Context(), in.Token, in.NewPassword, a.client(r)); err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// claims returns the caller of a Bearer-guarded route.
func claims(r *http.Request) (userID, sessionID uuid.UUID, err error) {
	c, ok := ClaimsFromContext(r.Context())
	if !ok {
		return uuid.Nil, uuid.Nil, autherr.New(autherr.Unauthorized, "authentication required")
	}
	uid, err := c.UserID()
	if err != nil {
		return uuid.Nil, uuid.Nil, autherr.Wrap(autherr.TokenInvalid, err, "invalid token")
	}
	sid, err := uuid.Parse(c.SessionID)
	if err != nil {
		return uuid.Nil, uuid.Nil, autherr.Wrap(autherr.TokenInvalid, err, "invalid token")
	}
	return uid, sid, nil
}

func (a *authHandler) profile(w http.ResponseWriter, r *http.Request) error {
	uid, _, err := claims(r)
	if err != nil {
		return err
	}
	u, err := a.svc.Profile(r.Context(), uid)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, userBody{User: u})
}

func (a *authHandler) updateProfile(w http.ResponseWriter, r *http.Request) error {
	uid, _, err := claims(r)
	if err != nil {
		return err
	}
	var in struct {
		Name  *string `json:"name"`
		Image *string `json:"image"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	u, err := a.svc.UpdateProfile(r.Context(), uid, ProfileUpdate{Name: in.Name, Image: in.Image}, a.client(r))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, userBody{User: u})
}

func (a *authHandler) changeEmail(w http.ResponseWriter, r *http.Request) error {
	uid, _, err := claims(r)
	if err != nil {
		return err
	}
	var in struct {
		NewEmail string `json:"newEmail"`
		Password string `json:"password"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := required(map[string]string{"newEmail": in.NewEmail, "password": in.Password}); err != nil {
		return err
	}
	if err := a.svc.ChangeEmail(r.Context(), uid, in.NewEmail, in.Password, a.client(r)); err != nil {
		return err
	}
	return web.JSON(w, http.StatusAccepted, map[string]bool{"ok": true})
}

func (a *authHandler) changePassword(w http.ResponseWriter, r *http.Request) error {
	uid, sid, err := claims(r)
	if err != nil {
		return err
	}
	var in struct {
		CurrentPassword string `json:"currentPassword"`
		NewPassword     string `json:"newPassword"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := required(map[string]string{"currentPassword": in.CurrentPassword, "newPassword": in.NewPassword}); err != nil {
		return err
	}
	if err := a.svc.ChangePassword(r.Context(), uid, sid, in.CurrentPassword, in.NewPassword, a.client(r)); err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (a *authHandler) deleteAccount(w http.ResponseWriter, r *http.Request) error {
	uid, _, err := claims(r)
	if err != nil {
		return err
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	if err := required(map[string]string{"password": in.Password}); err != nil {
		return err
	}
	if err := a.svc.DeleteAccount(r.Context(), uid, in.Password, a.client(r)); err != nil {
		return err
	}
	a.clearCookie(w)
	web.NoContent(w)
	return nil
}

func (a *authHandler) securityEvents(w http.ResponseWriter, r *http.Request) error {
	uid, _, err := claims(r)
	if err != nil {
		return err
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
		return web.Invalid(bad)
	}
	events, next, err := a.svc.SecurityEvents(r.Context(), uid, before, limit)
	if err != nil {
		return err
	}
	if events == nil {
		events = []SecurityEvent{}
	}
	body := map[string]any{"events": events}
	if next != 0 {
		body["nextBefore"] = next
	}
	return web.JSON(w, http.StatusOK, body)
}

func (a *authHandler) signupStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := a.svc.Signups(r.Context())
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, st)
}
