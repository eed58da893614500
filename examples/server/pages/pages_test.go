package pages_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/examples/server/pages"
)

func newHandler(t *testing.T, hsts bool) *pages.Handler {
	t.Helper()
	h, err := pages.New(pages.Options{HSTS: hsts})
	require.NoError(t, err)
	return h
}

func get(t *testing.T, h http.Handler, target string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// pagePaths are the paths of the pages, from the routes.
func pagePaths(t *testing.T, h *pages.Handler) []string {
	t.Helper()
	var out []string
	for _, r := range h.Routes() {
		p := strings.TrimPrefix(r, "GET ")
		if p == pages.AssetsPattern[len("GET "):] {
			continue
		}
		out = append(out, strings.TrimSuffix(p, "{$}"))
	}
	return out
}

func TestRoutesServeEveryPageWithItsHeaders(t *testing.T) {
	h := newHandler(t, false)
	paths := pagePaths(t, h)
	// The mail links of package mail land on four of them.
	for _, want := range []string{"/", "/signup", "/account", "/verify-email", "/reset-password", "/confirm-email-change", "/accept-invitation", "/forgot-password"} {
		require.Contains(t, paths, want)
	}
	for _, p := range paths {
		res := get(t, h, p+"?token=abc")
		require.Equal(t, http.StatusOK, res.StatusCode, p)
		assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"), p)
		assert.Equal(t, pages.CSP, res.Header.Get("Content-Security-Policy"), p)
		assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"), p)
		assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), "%s: pages receive tokens from mail links and are never stored", p)
		assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"), "%s: the token in the URL must not leak to another site", p)
		assert.Equal(t, "same-origin", res.Header.Get("Cross-Origin-Opener-Policy"), p)
		assert.Empty(t, res.Header.Get("Strict-Transport-Security"), "%s: no HSTS for an http base URL", p)
	}
	res := get(t, newHandler(t, true), "/")
	assert.Equal(t, "max-age=63072000", res.Header.Get("Strict-Transport-Security"))
}

func TestCSPIsStrict(t *testing.T) {
	// Each directive the pages rely on; loosening one (an 'unsafe-inline',
	// a missing frame-ancestors) fails here.
	directives := map[string]string{}
	for _, d := range strings.Split(pages.CSP, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	assert.Equal(t, "'self'", directives["default-src"])
	assert.Equal(t, "'self'", directives["script-src"])
	assert.Equal(t, "'self'", directives["style-src"])
	assert.Equal(t, "'none'", directives["frame-ancestors"])
	assert.Equal(t, "'none'", directives["base-uri"])
	assert.Equal(t, "'self'", directives["form-action"])
	assert.Equal(t, "'none'", directives["object-src"])
	assert.NotContains(t, pages.CSP, "unsafe")
}

func TestRootIsNotACatchAll(t *testing.T) {
	// The sign-in page is the root alone: were it mounted as "GET /", every
	// unknown GET path (/api/v1/nope included) would answer HTML 200
	// instead of the JSON 404 of the server.
	mux := http.NewServeMux()
	h := newHandler(t, false)
	for _, r := range h.Routes() {
		mux.Handle(r, h)
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, p := range []string{"/nope", "/api/v1/nope", "/account/x", "/assets/"} {
		assert.Equal(t, http.StatusTeapot, get(t, mux, p).StatusCode, p)
	}
	assert.Equal(t, http.StatusOK, get(t, mux, "/").StatusCode)
}

func TestAssets(t *testing.T) {
	h := newHandler(t, false)
	res := get(t, h, "/assets/app.css")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/css; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
	assert.Equal(t, pages.CSP, res.Header.Get("Content-Security-Policy"))
	etag := res.Header.Get("ETag")
	require.NotEmpty(t, etag)
	assert.Equal(t, http.StatusNotModified, get(t, h, "/assets/app.css", "If-None-Match", etag).StatusCode)

	res = get(t, h, "/assets/api.js")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/javascript; charset=utf-8", res.Header.Get("Content-Type"), "module scripts need a JavaScript type")
	assert.NotEqual(t, etag, res.Header.Get("ETag"))

	for _, p := range []string{"/assets/nope.js", "/assets/..%2Findex.html", "/assets/%2e%2e"} {
		res := get(t, h, p)
		assert.Equal(t, http.StatusNotFound, res.StatusCode, p)
		var env struct {
			Error struct{ Code string } `json:"error"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&env), p)
		assert.Equal(t, "NOT_FOUND", env.Error.Code, p)
	}
}

// site is the embedded site as files on disk, for the checks of content.
func site(t *testing.T) fs.FS { return os.DirFS("site") }

func TestPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	// The CSP would block inline code in the browser; this finds it before
	// a browser does, with the file and the element.
	h := newHandler(t, false)
	for _, p := range pagePaths(t, h) {
		body, err := io.ReadAll(get(t, h, p).Body)
		require.NoError(t, err)
		z := html.NewTokenizer(bytes.NewReader(body))
		scripts := 0
		for {
			tt := z.Next()
			if tt == html.ErrorToken {
				require.ErrorIs(t, z.Err(), io.EOF, p)
				break
			}
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Key] = a.Val
				assert.False(t, strings.HasPrefix(a.Key, "on"), "%s: <%s %s>: inline event handler", p, tok.Data, a.Key)
				assert.NotEqual(t, "style", a.Key, "%s: <%s>: inline style", p, tok.Data)
				assert.NotContains(t, strings.ToLower(a.Val), "javascript:", "%s: <%s>", p, tok.Data)
			}
			switch tok.Data {
			case "form":
				// A native submission (before the module ran, or without
				// it) must never be a GET that puts a password in the URL.
				assert.Equal(t, "post", attrs["method"], "%s: <form id=%q>", p, attrs["id"])
			case "button":
				if attrs["type"] == "submit" {
					_, disabled := attrs["disabled"]
					assert.True(t, disabled, "%s: submit buttons start disabled until the module binds the form", p)
				}
			case "style":
				t.Errorf("%s: <style> element", p)
			case "script":
				scripts++
				assert.Equal(t, "module", attrs["type"], "%s: scripts are ES modules", p)
				require.NotEmpty(t, attrs["src"], "%s: inline <script>", p)
				assertAsset(t, h, p, attrs["src"])
			case "link":
				assertAsset(t, h, p, attrs["href"])
			}
		}
		assert.Equal(t, 1, scripts, "%s: one module per page", p)
	}
}

// assertAsset checks that a page's relative reference resolves to an asset.
func assertAsset(t *testing.T, h http.Handler, page, ref string) {
	t.Helper()
	require.True(t, strings.HasPrefix(ref, "assets/"), "%s: %q: assets are referenced relative to the base URL", page, ref)
	assert.Equal(t, http.StatusOK, get(t, h, "/"+ref).StatusCode, "%s references %s", page, ref)
}

var importPattern = regexp.MustCompile(`(?m)^import .* from '(\./[a-z-]+\.js)';$`)

func TestModuleImportsResolve(t *testing.T) {
	h := newHandler(t, false)
	mods, err := fs.Glob(site(t), "assets/*.js")
	require.NoError(t, err)
	require.NotEmpty(t, mods)
	for _, m := range mods {
		b, err := fs.ReadFile(site(t), m)
		require.NoError(t, err)
		for _, imp := range importPattern.FindAllStringSubmatch(string(b), -1) {
			target := path.Join("/assets", imp[1])
			assert.Equal(t, http.StatusOK, get(t, h, target).StatusCode, "%s imports %s", m, imp[1])
		}
		assert.NotContains(t, string(b), "innerHTML", "%s: text goes in through textContent", m)
		assert.NotContains(t, string(b), "localStorage", "%s: the access token lives in memory only", m)
		assert.NotRegexp(t, `https?://`, string(b), "%s: no absolute URLs (no CDN; the base comes from the module's own URL)", m)
	}
}

var messageKey = regexp.MustCompile(`(?m)^  ([A-Z_]+): `)

func TestEveryErrorCodeHasAMessage(t *testing.T) {
	b, err := fs.ReadFile(site(t), "assets/api.js")
	require.NoError(t, err)
	src := string(b)
	start := strings.Index(src, "const messages = {")
	require.GreaterOrEqual(t, start, 0)
	end := strings.Index(src[start:], "\n};")
	require.Greater(t, end, 0)
	var have []string
	for _, m := range messageKey.FindAllStringSubmatch(src[start:start+end], -1) {
		have = append(have, m[1])
	}
	// A code added to the taxonomy without a readable message in the
	// pages fails here (the page would show the generic one).
	for _, c := range autherr.Codes() {
		assert.True(t, slices.Contains(have, string(c)), "api.js has no message for %s", c)
	}
}
