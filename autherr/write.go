package autherr

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
)

// RequestIDHeader carries the request id on requests and responses.
const RequestIDHeader = "X-Request-Id"

// Writer answers errors with the JSON envelope of api.md and logs them. The
// zero value is ready to use and logs to slog.Default().
type Writer struct {
	// Logger receives one record per error: WARN for 4xx, ERROR for 5xx.
	// Nil means slog.Default().
	Logger *slog.Logger
	// Observe, when set, is called once per error after it was logged
	// (and written), with the classified error and the status sent; for
	// metrics. It must not retain e beyond the call or modify it.
	Observe func(e *Error, status int)
}

// Write answers err with Writer{}.Write: the envelope, logged to
// slog.Default().
func Write(w http.ResponseWriter, r *http.Request, err error) {
	Writer{}.Write(w, r, err)
}

// Write classifies err, logs it and writes the envelope
//
//	{"error":{"code":…,"message":…,"requestId":…,"remainingSeconds":…,"details":…}}
//
// with the code's status, Content-Type: application/json and
// Cache-Control: no-store. remainingSeconds (and Retry-After) are sent when
// RemainingSeconds > 0; a retryable error (IsRetryable) gets Retry-After: 1
// and every other SERVICE_UNAVAILABLE Retry-After: OutageRetrySeconds, so a
// client backs off during an outage instead of hammering it. Domain codes
// answered with 503 (GRANT_NOT_CONFIGURED) get none: retrying does not help.
// INTERNAL, SERVICE_UNAVAILABLE and unknown codes (sent as INTERNAL) carry
// the generic message and no details. The request id comes from the
// response header X-Request-Id (set by the web middleware), else from a
// sane request header, which is then echoed. A nil err is a caller bug and
// answers INTERNAL. Write must be called before anything else was written
// to w.
func (wr Writer) Write(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		err = errors.New("autherr: Write called with a nil error")
	}
	id := requestID(w, r)
	if id != "" {
		w.Header().Set(RequestIDHeader, id)
	}
	e := Classify(err)
	code, msg, details := wireFields(e)
	status := code.Status()
	wr.log(r, id, e, err, status)

	b, mErr := json.Marshal(envelope{Error: envelopeBody{
		Code: code, Message: msg, RequestID: id,
		RemainingSeconds: max(e.RemainingSeconds, 0), Details: details,
	}})
	if mErr != nil {
		// Details held a value JSON cannot encode: a bug of the caller.
		// Answer without details rather than not at all, and say so.
		wr.logger().LogAttrs(ctxOf(r), slog.LevelError, "autherr: error details not encodable; sent without details",
			slog.String("code", string(code)), slog.String("cause", mErr.Error()), slog.String("requestId", id))
		b, mErr = json.Marshal(envelope{Error: envelopeBody{
			Code: code, Message: msg, RequestID: id, RemainingSeconds: max(e.RemainingSeconds, 0),
		}})
		if mErr != nil { // unreachable: only strings and an int remain
			b = []byte(`{"error":{"code":"INTERNAL","message":"internal error","requestId":""}}`)
		}
	}
	b = append(b, '\n')

	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	switch {
	case e.RemainingSeconds > 0:
		h.Set("Retry-After", strconv.Itoa(e.RemainingSeconds))
	case IsRetryable(err):
		h.Set("Retry-After", "1")
	case code == ServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(OutageRetrySeconds))
	}
	w.WriteHeader(status)
	if _, wErr := w.Write(b); wErr != nil {
		// The client most likely went away; the error itself is logged above.
		wr.logger().LogAttrs(ctxOf(r), slog.LevelWarn, "autherr: writing error response failed",
			slog.String("code", string(code)), slog.String("cause", wErr.Error()), slog.String("requestId", id))
	}
}

// OutageRetrySeconds is the Retry-After of a SERVICE_UNAVAILABLE answer
// that says nothing more precise (the database unreachable, say): a few
// seconds, the time /readyz takes to notice a recovery.
const OutageRetrySeconds = 5

// Log classifies err and logs it (and calls Observe) exactly as Write would,
// without writing a response: for errors that happen after the response
// has started. The request id comes from the request header.
func (wr Writer) Log(r *http.Request, err error) *Error {
	if err == nil {
		err = errors.New("autherr: Log called with a nil error")
	}
	var id string
	if r != nil {
		id = saneRequestID(r.Header.Get(RequestIDHeader))
	}
	e := Classify(err)
	code, _, _ := wireFields(e)
	wr.log(r, id, e, err, code.Status())
	return e
}

func (wr Writer) logger() *slog.Logger {
	if wr.Logger != nil {
		return wr.Logger
	}
	return slog.Default()
}

func (wr Writer) log(r *http.Request, id string, e *Error, err error, status int) {
	level := slog.LevelWarn
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	attrs := make([]slog.Attr, 0, 5)
	attrs = append(attrs, slog.Any("error", e))
	if err != error(e) && err != e.Err {
		// e was found inside err: keep the outer wrapping context too.
		attrs = append(attrs, slog.String("chain", err.Error()))
	}
	if r != nil {
		attrs = append(attrs, slog.String("method", r.Method))
		if r.URL != nil {
			attrs = append(attrs, slog.String("path", r.URL.Path)) // never the query: it can hold tokens
		}
	}
	attrs = append(attrs, slog.String("requestId", id))
	wr.logger().LogAttrs(ctxOf(r), level, "request failed", attrs...)
	if wr.Observe != nil {
		wr.Observe(e, status)
	}
}

// wireFields is what the client may see of e.
func wireFields(e *Error) (Code, string, map[string]any) {
	code := e.Code
	if !code.known() {
		code = Internal
	}
	if code == Internal || code == ServiceUnavailable {
		return code, code.defaultMessage(), nil
	}
	return code, e.message(), e.Details
}

type envelope struct {
	Error envelopeBody `json:"error"`
}

type envelopeBody struct {
	Code             Code           `json:"code"`
	Message          string         `json:"message"`
	RequestID        string         `json:"requestId"`
	RemainingSeconds int            `json:"remainingSeconds,omitempty"`
	Details          map[string]any `json:"details,omitempty"`
}

func requestID(w http.ResponseWriter, r *http.Request) string {
	if id := saneRequestID(w.Header().Get(RequestIDHeader)); id != "" {
		return id
	}
	if r != nil {
		return saneRequestID(r.Header.Get(RequestIDHeader))
	}
	return ""
}

// saneRequestID returns id when it is 1 to 128 printable ASCII characters
// without spaces, else "".
func saneRequestID(id string) string {
	if len(id) == 0 || len(id) > 128 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return ""
		}
	}
	return id
}

func ctxOf(r *http.Request) context.Context {
	if r != nil {
		return r.Context()
	}
	return context.Background()
}
