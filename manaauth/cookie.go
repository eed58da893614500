package manaauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/token"
)

// The web session: an HttpOnly cookie, and beside it a CSRF token that the
// page's script reads and sends back in a header.
const (
	// SessionCookie is the name of the web session cookie (HttpOnly,
	// SameSite=Lax, Secure unless the base URL is http on localhost).
	SessionCookie = "mana_session"
	// CSRFCookie carries the CSRF token of the session, readable by the
	// page's script (not HttpOnly).
	CSRFCookie = "mana_csrf"
	// CSRFHeader is where a cookie-authenticated call sends the token.
	CSRFHeader = "X-CSRF-Token"
)

// CSRFToken is the CSRF token of a web session: HMAC-SHA256 of the session
// cookie under a key derived from the signing key (the same on every
// instance), base64url. It is the "signed double-submit cookie" of the
// OWASP CSRF cheat sheet: a page of another origin can make the browser
// send the session cookie, but cannot read the token to put it in the
// header, and cannot compute it without the key. Nothing is stored.
func (s *Service) CSRFToken(sessionCookie string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(sessionCookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Origin is the origin of u, "scheme://host[:port]" — what a browser
// sends in the Origin header.
func Origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

func (s *Service) setCookie(w http.ResponseWriter, p *TokenPair) {
	if p.SessionCookie == "" {
		return
	}
	age := int(s.cfg.SessionTTL / time.Second)
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: p.SessionCookie, Path: "/", HttpOnly: true,
		Secure: s.secureCookies, SameSite: http.SameSiteLaxMode, MaxAge: age,
	})
	http.SetCookie(w, &http.Cookie{
		Name: CSRFCookie, Value: s.CSRFToken(p.SessionCookie), Path: "/",
		Secure: s.secureCookies, SameSite: http.SameSiteLaxMode, MaxAge: age,
	})
}

func (s *Service) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: s.secureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: "", Path: "/",
		Secure: s.secureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// caller authenticates a route that takes the Bearer token or, failing
// that, the session cookie with its CSRF token.
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
		return token.SessionFromRequest(r.WithContext(token.ContextWithClaims(r.Context(), c)))
	}
	if ck, err := r.Cookie(SessionCookie); err == nil {
		return a.cookieSession(r, ck.Value)
	}
	return uuid.Nil, uuid.Nil, autherr.New(autherr.Unauthorized, "authentication required")
}

// cookieSession resolves the session cookie and then checks that the
// request may use it: from a trusted origin, with the session's CSRF
// token. An unknown session answers UNAUTHORIZED first, so a stale cookie
// from anywhere learns nothing more.
//
// Errors: UNAUTHORIZED, FORBIDDEN (details.reason "origin" or "csrf"),
// SERVICE_UNAVAILABLE.
func (a *authHandler) cookieSession(r *http.Request, cookie string) (userID, sessionID uuid.UUID, err error) {
	userID, sessionID, err = a.svc.SessionFromCookie(r.Context(), cookie)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	if err := a.checkOrigin(r); err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	want := a.svc.CSRFToken(cookie)
	if got := r.Header.Get(CSRFHeader); got == "" || !hmac.Equal([]byte(got), []byte(want)) {
		return uuid.Nil, uuid.Nil, &autherr.Error{Code: autherr.Forbidden,
			Message: "this call needs the session's CSRF token in the " + CSRFHeader + " header",
			Details: map[string]any{"reason": "csrf"}}
	}
	return userID, sessionID, nil
}

// checkOrigin refuses a cookie-authenticated call that a browser marks as
// coming from another origin: an Origin header not among the trusted
// ones (an opaque "null" origin included), or, without Origin, a
// Sec-Fetch-Site of "cross-site". A request without either (a non-browser
// client) still needs the CSRF token.
func (a *authHandler) checkOrigin(r *http.Request) error {
	refuse := func() error {
		return &autherr.Error{Code: autherr.Forbidden, Message: "cross-origin call refused",
			Details: map[string]any{"reason": "origin"}}
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !slices.Contains(a.opts.TrustedOrigins, strings.ToLower(origin)) {
			return refuse()
		}
		return nil
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return refuse()
	}
	return nil
}
