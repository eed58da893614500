package autherr

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// discard is a Writer whose log records go nowhere.
func discard() Writer { return Writer{Logger: slog.New(slog.DiscardHandler)} }

// dump renders a recorded response as status line, sorted headers and body.
func dump(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	res := rec.Result()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", res.Proto, res.Status)
	keys := make([]string, 0, len(res.Header))
	for k := range res.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range res.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	b.WriteString(rec.Body.String())
	return b.String()
}

func serve(t testing.TB, wr Writer, err error, requestID string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login?token=tok-secret", nil)
	rec := httptest.NewRecorder()
	if requestID != "" {
		rec.Header().Set(RequestIDHeader, requestID) // as the web middleware does
	}
	wr.Write(rec, req, err)
	return rec
}

// TestWriteGolden pins the envelope of representative errors, status line
// and headers included. Run `go test ./autherr -update` to rewrite the
// files after a deliberate change and review the diff.
//
// If Retry-After were dropped, account_locked, serialization_failure and
// service_unavailable_pg (an outage: Retry-After 5) fail; if 5xx answers leaked their cause (SQL, table, SQLSTATE),
// service_unavailable_pg and internal fail.
func TestWriteGolden(t *testing.T) {
	cases := []struct {
		name string
		err  error
	}{
		{"account_locked", &Error{Code: AccountLocked, Message: "account temporarily locked", RemainingSeconds: 1799}},
		{"validation_failed", &Error{Code: ValidationFailed, Message: "request validation failed", Details: map[string]any{
			"fields": map[string]string{"email": "must be a valid email address", "password": "is required"},
		}}},
		{"service_unavailable_pg", incidentErr()},
		{"serialization_failure", fmt.Errorf("refresh: rotate: %w", pgErr("40001", "could not serialize access due to concurrent update"))},
		{"internal", fmt.Errorf("issue token: %w", errors.New("ed25519: bad private key length: 12"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := dump(t, serve(t, discard(), tc.err, "req-"+tc.name))
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "missing golden file; run go test ./autherr -update")
			assert.Equal(t, string(want), got, "envelope of %s differs from %s", tc.name, path)
		})
	}
}

// TestWrite5xxLeaksNothing: for errors that answer 5xx, the body carries
// only code, generic message and request id. If Write used e.Message, the
// cause or Details for INTERNAL/SERVICE_UNAVAILABLE, the forbidden strings
// below show up and the case fails.
func TestWrite5xxLeaksNothing(t *testing.T) {
	drift := &pgconn.PgError{
		Severity: "ERROR", Code: "42P01", Message: `relation "auth.login_attempts" does not exist`,
		Detail: "select id, email from auth.login_attempts", Hint: "check the migrations",
		SchemaName: "auth", TableName: "login_attempts", ColumnName: "attempted_at",
		ConstraintName: "login_attempts_pkey", InternalQuery: "SELECT 1",
	}
	forbidden := []string{
		"42P01", "42703", "23502", "SQLSTATE", "auth.", "login_attempts", "attempted_at", "users",
		"select", "SELECT", "relation", "column", "constraint", "migrations", "pgconn", "dial",
		"127.0.0.1", "nobody", "nothing", "secret-detail", "ed25519", "stack",
	}
	cases := []struct {
		name string
		err  error
	}{
		{"schema_drift_table", fmt.Errorf("lockout: record attempt: %w", drift)},
		{"schema_drift_column", incidentErr()},
		{"not_null_bug", pgErr("23502", `null value in column "user_agent" of relation "security_events" violates not-null constraint`)},
		{"connect_error", connectErr(t)},
		{"internal_with_developer_message", Wrap(Internal, errors.New("ed25519: bad key"), "SELECT failed on auth.users")},
		{"unavailable_with_details", &Error{Code: ServiceUnavailable, Message: "column email missing", Details: map[string]any{"sql": "secret-detail"}}},
		{"unknown_code", &Error{Code: "STACK_OVERFLOW", Message: "stack overflow in auth.users"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, discard(), tc.err, "req-1")
			require.GreaterOrEqual(t, rec.Code, 500, "status")
			body := rec.Body.String()
			for _, s := range forbidden {
				assert.NotContainsf(t, body, s, "5xx body of %s leaks %q: %s", tc.name, s, body)
			}
			var env struct {
				Error map[string]any `json:"error"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), "body %q", body)
			assert.ElementsMatch(t, []string{"code", "message", "requestId"}, keys(env.Error), "5xx envelope fields")
			assert.Contains(t, []any{"INTERNAL", "SERVICE_UNAVAILABLE"}, env.Error["code"])
		})
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

type logLine struct {
	Level     string         `json:"level"`
	Msg       string         `json:"msg"`
	Error     map[string]any `json:"error"`
	Chain     string         `json:"chain"`
	Method    string         `json:"method"`
	Path      string         `json:"path"`
	RequestID string         `json:"requestId"`
}

func captureWriter(buf *bytes.Buffer) Writer {
	return Writer{Logger: slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

func parseLog(t testing.TB, buf *bytes.Buffer) []logLine {
	t.Helper()
	var lines []logLine
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var ll logLine
		require.NoErrorf(t, json.Unmarshal(l, &ll), "log line %s", l)
		lines = append(lines, ll)
	}
	return lines
}

// TestWriteLogs: the error picks its level and fields. If 5xx logged at
// WARN (or 4xx at ERROR) the level rows fail; if the SQLSTATE were not
// logged, or were sent to the client, the sqlstate assertions fail; if the
// query string reached the log, the token assertion fails.
func TestWriteLogs(t *testing.T) {
	t.Run("5xx_error_level_with_sqlstate", func(t *testing.T) {
		var buf bytes.Buffer
		rec := serve(t, captureWriter(&buf), incidentErr(), "req-42")
		lines := parseLog(t, &buf)
		require.Len(t, lines, 1, "log: %s", buf.String())
		l := lines[0]
		assert.Equal(t, "ERROR", l.Level)
		assert.Equal(t, "request failed", l.Msg)
		assert.Equal(t, "42703", l.Error["sqlstate"], "log must carry the SQLSTATE")
		assert.Equal(t, "users", l.Error["table"])
		assert.Equal(t, "email", l.Error["column"])
		assert.Equal(t, "SERVICE_UNAVAILABLE", l.Error["code"])
		assert.EqualValues(t, 503, l.Error["status"])
		assert.Contains(t, l.Error["cause"], `login: find user: ERROR: column "email" does not exist (SQLSTATE 42703)`)
		assert.Equal(t, "POST", l.Method)
		assert.Equal(t, "/api/v1/auth/login", l.Path)
		assert.Equal(t, "req-42", l.RequestID)
		assert.NotContains(t, buf.String(), "tok-secret", "the query string must not be logged")
		assert.NotContains(t, rec.Body.String(), "42703", "the SQLSTATE must not reach the body")
	})
	t.Run("4xx_warn_level", func(t *testing.T) {
		var buf bytes.Buffer
		serve(t, captureWriter(&buf), fmt.Errorf("login: %w", New(InvalidCredentials, "invalid email or password")), "req-7")
		lines := parseLog(t, &buf)
		require.Len(t, lines, 1, "log: %s", buf.String())
		assert.Equal(t, "WARN", lines[0].Level)
		assert.Equal(t, "INVALID_CREDENTIALS", lines[0].Error["code"])
		assert.EqualValues(t, 401, lines[0].Error["status"])
		assert.Equal(t, "login: INVALID_CREDENTIALS: invalid email or password", lines[0].Chain, "outer wrapping context is logged")
		assert.Nil(t, lines[0].Error["sqlstate"])
	})
	t.Run("details_values_never_logged", func(t *testing.T) {
		var buf bytes.Buffer
		serve(t, captureWriter(&buf), &Error{Code: ValidationFailed, Details: map[string]any{
			"fields": map[string]string{"password": "hunter2-is-too-common"},
		}}, "req-8")
		assert.NotContains(t, buf.String(), "hunter2", "Details values must not be logged")
		lines := parseLog(t, &buf)
		require.Len(t, lines, 1)
		assert.Equal(t, []any{"fields"}, lines[0].Error["detailKeys"])
	})
	t.Run("pg_detail_never_logged", func(t *testing.T) {
		var buf bytes.Buffer
		serve(t, captureWriter(&buf), &pgconn.PgError{
			Severity: "ERROR", Code: "23505", ConstraintName: "users_email_key", TableName: "users",
			Message: `duplicate key value violates unique constraint "users_email_key"`,
			Detail:  "Key (lower(email))=(alice@example.com) already exists.",
		}, "req-9")
		assert.NotContains(t, buf.String(), "alice@example.com", "PgError.Detail quotes row values")
		lines := parseLog(t, &buf)
		require.Len(t, lines, 1)
		assert.Equal(t, "WARN", lines[0].Level)
		assert.Equal(t, "EMAIL_ALREADY_REGISTERED", lines[0].Error["code"])
		assert.Equal(t, "users_email_key", lines[0].Error["constraint"])
	})
}

func TestWriteObserve(t *testing.T) {
	var got []string
	wr := Writer{Logger: slog.New(slog.DiscardHandler), Observe: func(e *Error, status int) {
		got = append(got, fmt.Sprintf("%s %d", e.Code, status))
	}}
	serve(t, wr, incidentErr(), "")
	serve(t, wr, New(RateLimited, "slow down"), "")
	serve(t, wr, &Error{Code: "BOGUS"}, "")
	assert.Equal(t, []string{"SERVICE_UNAVAILABLE 503", "RATE_LIMITED 429", "BOGUS 500"}, got)
}

func TestWriteRequestID(t *testing.T) {
	body := func(rec *httptest.ResponseRecorder) map[string]any {
		var env struct {
			Error map[string]any `json:"error"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env))
		return env.Error
	}
	t.Run("from_response_header", func(t *testing.T) {
		rec := serve(t, discard(), New(NotFound, ""), "resp-id")
		assert.Equal(t, "resp-id", body(rec)["requestId"])
		assert.Equal(t, "resp-id", rec.Header().Get(RequestIDHeader))
	})
	t.Run("fallback_request_header_echoed", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set(RequestIDHeader, "client-id")
		rec := httptest.NewRecorder()
		discard().Write(rec, req, New(NotFound, ""))
		assert.Equal(t, "client-id", body(rec)["requestId"])
		assert.Equal(t, "client-id", rec.Header().Get(RequestIDHeader))
	})
	t.Run("insane_request_header_ignored", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set(RequestIDHeader, "has space\x01")
		rec := httptest.NewRecorder()
		discard().Write(rec, req, New(NotFound, ""))
		assert.Equal(t, "", body(rec)["requestId"])
		assert.Empty(t, rec.Header().Get(RequestIDHeader))
	})
}

func TestWriteEdgeCases(t *testing.T) {
	t.Run("unknown_code_answers_internal", func(t *testing.T) {
		rec := serve(t, discard(), &Error{Code: "BOGUS", Message: "nope"}, "r")
		assert.Equal(t, 500, rec.Code)
		assert.Contains(t, rec.Body.String(), `"code":"INTERNAL"`)
		assert.NotContains(t, rec.Body.String(), "BOGUS")
	})
	t.Run("nil_error_answers_internal", func(t *testing.T) {
		var buf bytes.Buffer
		rec := serve(t, captureWriter(&buf), nil, "r")
		assert.Equal(t, 500, rec.Code)
		assert.Contains(t, buf.String(), "Write called with a nil error")
	})
	t.Run("unencodable_details_sent_without_and_logged", func(t *testing.T) {
		var buf bytes.Buffer
		rec := serve(t, captureWriter(&buf), &Error{Code: Conflict, Details: map[string]any{"ch": make(chan int)}}, "r")
		assert.Equal(t, 409, rec.Code)
		assert.JSONEq(t, `{"error":{"code":"CONFLICT","message":"request conflicts with the current state","requestId":"r"}}`, rec.Body.String())
		assert.Contains(t, buf.String(), "details not encodable")
	})
	t.Run("domain_5xx_keeps_message", func(t *testing.T) {
		rec := serve(t, discard(), New(GrantNotConfigured, "mission grants are not configured"), "r")
		assert.Equal(t, 503, rec.Code)
		assert.Contains(t, rec.Body.String(), "mission grants are not configured")
	})
	t.Run("4xx_message_and_details_sent", func(t *testing.T) {
		rec := serve(t, discard(), &Error{Code: RateLimited, Message: "slow down", RemainingSeconds: 30, Details: map[string]any{"scope": "ip"}}, "r")
		assert.JSONEq(t, `{"error":{"code":"RATE_LIMITED","message":"slow down","requestId":"r","remainingSeconds":30,"details":{"scope":"ip"}}}`, rec.Body.String())
		assert.Equal(t, "30", rec.Header().Get("Retry-After"))
	})
	t.Run("stale_content_length_removed", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Length", "2")
		discard().Write(rec, req, New(NotFound, ""))
		assert.Empty(t, rec.Header().Get("Content-Length"))
	})
	t.Run("failed_body_write_logged", func(t *testing.T) {
		var buf bytes.Buffer
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		captureWriter(&buf).Write(failingWriter{httptest.NewRecorder()}, req, New(NotFound, ""))
		assert.Contains(t, buf.String(), "writing error response failed")
		assert.Contains(t, buf.String(), "broken pipe")
	})
}

type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("write tcp: broken pipe") }

func TestLog(t *testing.T) {
	var buf bytes.Buffer
	req := httptest.NewRequest(http.MethodPost, "/api/v1/auth/refresh", nil)
	req.Header.Set(RequestIDHeader, "req-log")
	e := captureWriter(&buf).Log(req, incidentErr())
	require.NotNil(t, e)
	assert.Equal(t, ServiceUnavailable, e.Code)
	lines := parseLog(t, &buf)
	require.Len(t, lines, 1)
	assert.Equal(t, "ERROR", lines[0].Level)
	assert.Equal(t, "req-log", lines[0].RequestID)
	assert.Equal(t, "42703", lines[0].Error["sqlstate"])

	buf.Reset()
	e = captureWriter(&buf).Log(nil, nil)
	assert.Equal(t, Internal, e.Code, "nil error is a caller bug")
	assert.Contains(t, buf.String(), "Log called with a nil error")
}
