package manaauth_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
)

// Guards the Secure attribute of the session cookie: on unless the base
// URL is plain http on this machine. Every other deployment gets Secure
// without being told (the earlier default, off unless configured, sent the
// session cookie in clear text to a host that forgot the flag).
func TestSessionCookieSecureUnlessHTTPOnLocalhost(t *testing.T) {
	t.Parallel()
	for base, secure := range map[string]bool{
		"https://auth.example.com":  true,
		"http://auth.example.com":   true,
		"http://localhost:8080":     false,
		"http://127.0.0.1:8080/app": false,
		"http://[::1]:8080":         false,
	} {
		f := wrap(authtest.New(t, authtest.Options{BaseURL: base}))
		st, body, resp := f.call(t, "POST", "/register", map[string]any{"email": "c@x.com", "password": strongPassword}, nil)
		require.Equal(t, http.StatusCreated, st, "%v", body)
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "mana_session" {
				cookie = c
			}
		}
		require.NotNil(t, cookie, "%s: register without verification sets the session cookie", base)
		assert.Equal(t, secure, cookie.Secure, base)
		assert.True(t, cookie.HttpOnly, base)
		assert.Equal(t, http.SameSiteLaxMode, cookie.SameSite, base)
	}
}
