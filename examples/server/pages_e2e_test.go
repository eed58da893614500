package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/examples/server/pages"
)

// e2ePages: the hosted pages as the server mounts them (every answer
// checked against openapi.yaml), and the JSON 404 envelope still answering
// every other path — the sign-in page at "/" must not become a catch-all.
// The pages' behaviour in a browser is e2e/'s.
func e2ePages(t *testing.T, f *e2eServer) {
	for _, p := range []string{"/", "/signup", "/verify-email?token=abc", "/forgot-password", "/reset-password?token=abc",
		"/confirm-email-change?token=abc", "/accept-invitation?token=abc", "/account"} {
		r := f.expect(200, "GET", p, nil)
		assert.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"), p)
		assert.Equal(t, pages.CSP, r.header.Get("Content-Security-Policy"), p)
		assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"), p)
		assert.Empty(t, r.header.Get("Strict-Transport-Security"), "%s: no HSTS for an http base URL", p)
		assert.Contains(t, string(r.body), `<script type="module" src="assets/`, p)
	}
	r := f.expect(200, "GET", "/assets/app.css", nil)
	assert.Equal(t, "text/css; charset=utf-8", r.header.Get("Content-Type"))
	f.expect(304, "GET", "/assets/app.css", nil, withHeader("If-None-Match", r.header.Get("ETag")))
	f.expect(200, "GET", "/assets/account.js", nil)

	f.expectCode(404, "NOT_FOUND", "GET", "/assets/nope.js", nil)
	for _, p := range []struct{ method, path string }{
		{"GET", "/api/v1/nope"}, {"GET", "/api/v1/auth/nope"}, {"GET", "/nope"}, {"GET", "/account/"},
		{"POST", "/"}, {"POST", "/account"}, {"DELETE", "/signup"},
	} {
		// Not documented: sent past the spec client and the coverage report.
		req, err := http.NewRequest(p.method, f.c.srv.URL+p.path, nil)
		require.NoError(t, err)
		res, err := f.c.srv.Client().Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		assert.Equal(t, http.StatusNotFound, res.StatusCode, "%s %s", p.method, p.path)
		assert.Equal(t, "application/json", res.Header.Get("Content-Type"), "%s %s", p.method, p.path)
		assert.Equal(t, "NOT_FOUND", decodeEnvelope(t, body).Error.Code, "%s %s", p.method, p.path)
	}
}
