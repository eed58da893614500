package web

import (
	"fmt"
	"net/http"

	"github.com/mana-how/mana-auth/autherr"
)

// HandlerFunc is an HTTP handler that returns its error instead of writing
// it. Served directly it answers errors with autherr.Write (logging to
// slog.Default()); use Handle to choose the autherr.Writer.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP calls f and answers its error, if any, with autherr.Write.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serve(autherr.Writer{}, f, w, r)
}

// Handle adapts fn to an http.Handler whose errors errs answers: the
// envelope, the log record at the level the error picks, the Observe hook.
// When fn returns an error after it started the response (a failed write
// of a large body, say), the envelope cannot be sent any more; the error is
// logged (and observed) instead, never dropped.
func Handle(errs autherr.Writer, fn HandlerFunc) http.Handler {
	return handler{errs: errs, fn: fn}
}

type handler struct {
	errs autherr.Writer
	fn   HandlerFunc
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serve(h.errs, h.fn, w, r)
}

func serve(errs autherr.Writer, fn HandlerFunc, w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	err := fn(tw, r)
	if err == nil {
		return
	}
	if tw.started {
		errs.Log(r, fmt.Errorf("web: error after the response started: %w", err))
		return
	}
	errs.Write(w, r, err)
}

// trackingWriter notes whether the response has started, so an error
// returned afterwards is logged instead of corrupting the answer.
type trackingWriter struct {
	http.ResponseWriter
	started bool
}

func (t *trackingWriter) WriteHeader(code int) {
	if code >= 200 { // 1xx informational answers do not start the response
		t.started = true
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.started = true
	return t.ResponseWriter.Write(b)
}

// Flush passes through to the underlying writer, if it can flush.
func (t *trackingWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		t.started = true
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
