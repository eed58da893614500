package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/web"
)

// Guards CORS: only listed origins get the headers (credentials
// included); a preflight is answered without reaching the handler; an
// unlisted origin gets nothing a browser would honour. Without the list
// check the "evil" origin would read answers with the user's cookie.
func TestCORS(t *testing.T) {
	origins, err := web.ParseOrigins(" https://App.example.com ,http://localhost:5173")
	require.NoError(t, err)
	assert.Equal(t, []string{"https://app.example.com", "http://localhost:5173"}, origins)
	reached := 0
	h := web.CORS(origins)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.WriteHeader(http.StatusTeapot)
	}))
	do := func(method, origin string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/api/v1/auth/profile", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := do("GET", "https://app.example.com")
	assert.Equal(t, http.StatusTeapot, rec.Code)
	assert.Equal(t, "https://app.example.com", rec.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", rec.Header().Get("Access-Control-Allow-Credentials"))
	assert.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "Retry-After")
	assert.Contains(t, rec.Header().Values("Vary"), "Origin")

	rec = do("OPTIONS", "http://localhost:5173", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type, x-csrf-token")
	assert.Equal(t, http.StatusNoContent, rec.Code)
	assert.Contains(t, rec.Header().Get("Access-Control-Allow-Methods"), "POST")
	assert.Contains(t, rec.Header().Get("Access-Control-Allow-Headers"), "X-CSRF-Token")
	assert.Equal(t, "600", rec.Header().Get("Access-Control-Max-Age"))

	for _, evil := range []string{"https://evil.example", "null", "https://app.example.com.evil.example"} {
		rec = do("GET", evil)
		assert.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"), evil)
		assert.Empty(t, rec.Header().Get("Access-Control-Allow-Credentials"), evil)
		rec = do("OPTIONS", evil, "Access-Control-Request-Method", "POST")
		assert.Equal(t, http.StatusNoContent, rec.Code, evil)
		assert.Empty(t, rec.Header().Get("Access-Control-Allow-Methods"), evil)
	}
	assert.Equal(t, 4, reached, "preflights never reach the handler; simple requests do")

	rec = do("GET", "")
	assert.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"), "no Origin, no CORS")

	off := web.CORS(nil)(http.NotFoundHandler())
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Origin", "https://app.example.com")
	off.ServeHTTP(rec, req)
	assert.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"), "none by default")

	for _, bad := range []string{"*", "app.example.com", "https://a.example/", "https://a.example/path", "ftp://a.example", "https://u@a.example"} {
		_, err := web.ParseOrigins(bad)
		assert.Error(t, err, bad)
	}
}
