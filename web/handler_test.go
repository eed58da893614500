package web_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandle(t *testing.T) {
	t.Run("success_untouched", func(t *testing.T) {
		h := web.Handle(quiet(), func(w http.ResponseWriter, r *http.Request) error {
			return web.JSON(w, http.StatusCreated, map[string]string{"id": "1"})
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		assert.Equal(t, http.StatusCreated, rec.Code)
		assert.JSONEq(t, `{"id":"1"}`, rec.Body.String())
	})
	// The incident through the adapter: a database error from the service
	// answers 503, never 401. If the adapter wrote its own status, this fails.
	t.Run("error_answered_with_envelope", func(t *testing.T) {
		var observed []string
		errs := quiet()
		errs.Observe = func(e *autherr.Error, status int) { observed = append(observed, fmt.Sprint(e.Code, status)) }
		h := web.Handle(errs, func(w http.ResponseWriter, r *http.Request) error {
			return fmt.Errorf("login: find user: %w", &pgconn.PgError{Code: "42703", Message: `column "email" does not exist`})
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/login", nil))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, autherr.ServiceUnavailable, decodeEnvelope(t, rec).Error.Code)
		assert.NotContains(t, rec.Body.String(), "email")
		assert.Equal(t, []string{"SERVICE_UNAVAILABLE503"}, observed)
	})
	// An error after the response started is logged, never appended to the
	// body. If the adapter wrote the envelope anyway, the body check fails;
	// if it dropped the error, the log check fails.
	t.Run("error_after_response_started_is_logged", func(t *testing.T) {
		var buf bytes.Buffer
		h := web.Handle(logWriter(&buf), func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("partial")) // the recorder never fails
			return errors.New("stream: encoder broke")
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/export", nil))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "partial", rec.Body.String())
		assert.Contains(t, buf.String(), "error after the response started")
		assert.Contains(t, buf.String(), "stream: encoder broke")
		assert.Contains(t, buf.String(), `"level":"ERROR"`)
	})
	t.Run("informational_header_does_not_start_response", func(t *testing.T) {
		h := web.Handle(quiet(), func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusEarlyHints)
			return autherr.New(autherr.Forbidden, "")
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		// The recorder keeps the first status it saw; the envelope body shows
		// the adapter still answered.
		assert.Equal(t, autherr.Forbidden, decodeEnvelope(t, rec).Error.Code)
	})
	t.Run("flush_reaches_the_underlying_writer", func(t *testing.T) {
		h := web.Handle(quiet(), func(w http.ResponseWriter, r *http.Request) error {
			require.NoError(t, http.NewResponseController(w).Flush())
			return nil
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.True(t, rec.Flushed)
	})
}

// TestHandlerFuncDefaultWriter: served directly, a HandlerFunc answers its
// error with autherr.Write.
func TestHandlerFuncDefaultWriter(t *testing.T) {
	h := web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return autherr.New(autherr.TokenExpired, "token has expired")
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/refresh", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Equal(t, autherr.TokenExpired, decodeEnvelope(t, rec).Error.Code)
}

func TestJSONAndNoContent(t *testing.T) {
	rec := httptest.NewRecorder()
	require.NoError(t, web.JSON(rec, http.StatusOK, map[string]any{"valid": true}))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Equal(t, "{\"valid\":true}\n", rec.Body.String())

	// An unencodable value writes nothing, so the adapter can still answer
	// INTERNAL. If JSON wrote the header first, the status would be 200.
	h := web.Handle(quiet(), func(w http.ResponseWriter, r *http.Request) error {
		return web.JSON(w, http.StatusOK, map[string]any{"ch": make(chan int)})
	})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.Equal(t, autherr.Internal, decodeEnvelope(t, rec).Error.Code)

	rec = httptest.NewRecorder()
	web.NoContent(rec)
	assert.Equal(t, http.StatusNoContent, rec.Code)
	assert.Empty(t, rec.Body.String())
}

type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("write tcp: broken pipe") }

func TestJSONWriteErrorReturned(t *testing.T) {
	err := web.JSON(failingWriter{httptest.NewRecorder()}, http.StatusOK, "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken pipe")
}

func TestSecurityHeaders(t *testing.T) {
	check := func(t *testing.T, rec *httptest.ResponseRecorder, cacheControl string) {
		t.Helper()
		assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
		assert.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
		assert.Equal(t, cacheControl, rec.Header().Get("Cache-Control"))
	}
	t.Run("success", func(t *testing.T) {
		h := web.SecurityHeaders(web.Handle(quiet(), func(w http.ResponseWriter, r *http.Request) error {
			return web.JSON(w, http.StatusOK, "ok")
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		check(t, rec, "no-store")
	})
	t.Run("error", func(t *testing.T) {
		h := web.SecurityHeaders(web.Handle(quiet(), func(w http.ResponseWriter, r *http.Request) error {
			return autherr.New(autherr.Unauthorized, "")
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		check(t, rec, "no-store")
	})
	t.Run("handler_may_override_cache_control", func(t *testing.T) {
		h := web.SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=300")
			w.WriteHeader(http.StatusOK)
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
		check(t, rec, "public, max-age=300")
	})
}
