package manaauth_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/manaauth"
)

// Guards CSRF on the cookie-authenticated calls (session-to-token, logout
// with the cookie). A page of another origin can make the browser send the
// session cookie — before this, a cross-origin POST of session-to-token
// with the cookie alone answered 200 with a token pair. Now the call needs
// the session's CSRF token in X-CSRF-Token (signed double-submit: the
// mana_csrf cookie, readable by our own pages only) and an Origin among
// the trusted ones. Every refusal changes nothing: the session still
// works with the right token afterwards.
func TestCookieCallsNeedCSRFTokenAndTrustedOrigin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	sessRegisterVerified(t, f, "csrf@x.com", strongPassword)
	st, body, resp := f.call(t, "POST", "/login", map[string]any{"email": "csrf@x.com", "password": strongPassword}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	var session, csrf *http.Cookie
	for _, c := range resp.Cookies() {
		switch c.Name {
		case manaauth.SessionCookie:
			session = c
		case manaauth.CSRFCookie:
			csrf = c
		}
	}
	require.NotNil(t, session)
	require.NotNil(t, csrf, "login sets the CSRF cookie beside the session cookie")
	assert.False(t, csrf.HttpOnly, "the page's script must read it")
	assert.True(t, session.HttpOnly)
	assert.Equal(t, f.svc.CSRFToken(session.Value), csrf.Value)
	cookie := manaauth.SessionCookie + "=" + session.Value + "; " + manaauth.CSRFCookie + "=" + csrf.Value

	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		reason string
	}{
		{"cookie alone", map[string]string{}, "csrf"},
		{"wrong token", map[string]string{manaauth.CSRFHeader: flipFirst(csrf.Value)}, "csrf"},
		{"other origin", map[string]string{manaauth.CSRFHeader: csrf.Value, "Origin": "https://evil.example"}, "origin"},
		{"opaque origin", map[string]string{manaauth.CSRFHeader: csrf.Value, "Origin": "null"}, "origin"},
		{"cross-site fetch", map[string]string{manaauth.CSRFHeader: csrf.Value, "Sec-Fetch-Site": "cross-site"}, "origin"},
	} {
		tc.hdr["Cookie"] = cookie
		for _, path := range []string{"/session-to-token", "/logout"} {
			st, body, _ := f.call(t, "POST", path, nil, tc.hdr)
			requireError(t, st, body, http.StatusForbidden, "FORBIDDEN")
			assert.Equal(t, tc.reason, errDetails(body)["reason"], "%s %s", tc.name, path)
			assert.Nil(t, body["accessToken"], "%s %s", tc.name, path)
		}
	}

	ok := map[string]string{"Cookie": cookie, manaauth.CSRFHeader: csrf.Value, "Origin": "https://app.test.example",
		"Sec-Fetch-Site": "same-origin"}
	st, body, _ = f.call(t, "POST", "/session-to-token", nil, ok)
	require.Equal(t, http.StatusOK, st, "the session survived every refusal: %v", body)
	assert.NotEmpty(t, body["accessToken"])
	st, body, resp = f.call(t, "POST", "/logout", nil, ok)
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	cleared := map[string]bool{}
	for _, c := range resp.Cookies() {
		cleared[c.Name] = c.MaxAge < 0
	}
	assert.Equal(t, map[string]bool{manaauth.SessionCookie: true, manaauth.CSRFCookie: true}, cleared)
	st, body, _ = f.call(t, "POST", "/session-to-token", nil, ok)
	requireError(t, st, body, http.StatusUnauthorized, "UNAUTHORIZED")
}

// flipFirst changes the first character of a base64url token to another
// one of the alphabet (always another: a fixed replacement equals the
// token whenever the token starts with it).
func flipFirst(tok string) string {
	if tok[0] == 'A' {
		return "B" + tok[1:]
	}
	return "A" + tok[1:]
}
