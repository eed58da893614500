package web_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (r loginRequest) Validate() error {
	fields := map[string]string{}
	if !strings.Contains(r.Email, "@") {
		fields["email"] = "must be an email address"
	}
	if r.Password == "" {
		fields["password"] = "is required"
	}
	if len(fields) > 0 {
		return web.Invalid(fields)
	}
	return nil
}

// decodeHandler decodes into a fresh loginRequest and echoes it.
func decodeHandler(optional bool) http.Handler {
	return web.Handle(quiet(), func(w http.ResponseWriter, r *http.Request) error {
		var req loginRequest
		decode := web.Decode
		if optional {
			decode = web.DecodeOptional
		}
		if err := decode(w, r, &req); err != nil {
			return err
		}
		return web.JSON(w, http.StatusOK, req)
	})
}

func post(h http.Handler, contentType string, body io.Reader, contentLength int64) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/login", body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if contentLength != 0 {
		req.ContentLength = contentLength
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// bodyOfSize returns a valid login body of exactly n bytes.
func bodyOfSize(t testing.TB, n int) string {
	t.Helper()
	prefix, suffix := `{"email":"a@example.com","password":"`, `"}`
	pad := n - len(prefix) - len(suffix)
	require.Positive(t, pad)
	return prefix + strings.Repeat("p", pad) + suffix
}

const validBody = `{"email":"a@example.com","password":"pw"}`

// TestDecode goes through the real adapter and checks status, code and
// the envelope. If the size limit were missing, the oversize rows answer
// 200; if JSON errors became INTERNAL, the malformed rows answer 500; if
// the validation error lost its fields, the validation row fails.
func TestDecode(t *testing.T) {
	cases := []struct {
		name          string
		optional      bool
		contentType   string
		body          string
		reader        io.Reader // overrides body
		contentLength int64     // -1: unknown (chunked); 0: from body
		status        int
		code          autherr.Code
		fields        []string // details.fields keys on VALIDATION_FAILED
		msgContains   string
	}{
		{name: "ok", contentType: "application/json", body: validBody, status: 200},
		{name: "ok_charset", contentType: "application/json; charset=utf-8", body: validBody, status: 200},
		{name: "ok_charset_upper", contentType: "Application/JSON; Charset=UTF-8", body: validBody, status: 200},
		{name: "ok_no_content_type", body: validBody, status: 200},
		{name: "ok_unknown_fields_ignored", contentType: "application/json", body: `{"email":"a@example.com","password":"pw","rememberMe":true,"nested":{"x":[1,2]}}`, status: 200},
		{name: "ok_surrounding_whitespace", body: "\n\t " + validBody + " \r\n", status: 200},
		{name: "ok_exactly_64KiB", body: bodyOfSize(t, web.MaxBodyBytes), status: 200},
		{name: "ok_exactly_64KiB_chunked", body: bodyOfSize(t, web.MaxBodyBytes), contentLength: -1, status: 200},

		{name: "oversize_by_content_length", body: bodyOfSize(t, web.MaxBodyBytes+1), status: 413, code: autherr.PayloadTooLarge},
		{name: "oversize_chunked", body: bodyOfSize(t, web.MaxBodyBytes+1), contentLength: -1, status: 413, code: autherr.PayloadTooLarge},
		{name: "oversize_huge_chunked", body: bodyOfSize(t, 10*web.MaxBodyBytes), contentLength: -1, status: 413, code: autherr.PayloadTooLarge},
		{name: "oversize_trailing_whitespace", body: validBody + strings.Repeat(" ", web.MaxBodyBytes), contentLength: -1, status: 413, code: autherr.PayloadTooLarge},

		{name: "content_type_text_plain", contentType: "text/plain", body: validBody, status: 400, code: autherr.BadRequest, msgContains: "Content-Type"},
		{name: "content_type_form", contentType: "application/x-www-form-urlencoded", body: "email=a", status: 400, code: autherr.BadRequest},
		{name: "content_type_multipart", contentType: "multipart/form-data; boundary=x", body: validBody, status: 400, code: autherr.BadRequest},
		{name: "content_type_json_suffix", contentType: "application/problem+json", body: validBody, status: 400, code: autherr.BadRequest},
		{name: "content_type_unparsable", contentType: "application/json; charset", body: validBody, status: 400, code: autherr.BadRequest},
		{name: "charset_latin1", contentType: "application/json; charset=iso-8859-1", body: validBody, status: 400, code: autherr.BadRequest},

		{name: "empty_body_required", body: "", status: 400, code: autherr.BadRequest, msgContains: "required"},
		{name: "whitespace_body_required", body: " \n ", status: 400, code: autherr.BadRequest},
		{name: "null_body_required", body: "null", status: 400, code: autherr.BadRequest},
		{name: "malformed_truncated", body: `{"email":`, status: 400, code: autherr.BadRequest},
		{name: "malformed_not_json", body: `email=a@example.com`, status: 400, code: autherr.BadRequest},
		{name: "malformed_single_quotes", body: `{'email':'a'}`, status: 400, code: autherr.BadRequest},
		{name: "trailing_value", body: validBody + ` {}`, status: 400, code: autherr.BadRequest},
		{name: "trailing_garbage", body: validBody + `x`, status: 400, code: autherr.BadRequest},
		{name: "wrong_type_field", body: `{"email":42,"password":"pw"}`, status: 400, code: autherr.BadRequest, msgContains: `"email"`},
		{name: "wrong_type_top_level_array", body: `[]`, status: 400, code: autherr.BadRequest},
		{name: "wrong_type_top_level_string", body: `"hello"`, status: 400, code: autherr.BadRequest},
		{name: "invalid_utf8_is_not_rejected_by_json_but_validated", body: "{\"email\":\"\xff\",\"password\":\"pw\"}", status: 400, code: autherr.ValidationFailed, fields: []string{"email"}},

		{name: "validation_failed", body: `{"email":"nope"}`, status: 400, code: autherr.ValidationFailed, fields: []string{"email", "password"}, msgContains: "email, password"},
		{name: "validation_failed_empty_object", body: `{}`, status: 400, code: autherr.ValidationFailed, fields: []string{"email", "password"}},

		// The client's connection broke mid-body: the client's problem. If
		// the read error were wrapped with %w, autherr would see ECONNRESET
		// and answer 503 SERVICE_UNAVAILABLE; this row fails then.
		{name: "body_read_error_is_client_fault", reader: iotest.ErrReader(fmt.Errorf("read tcp: %w", syscall.ECONNRESET)), contentLength: -1, status: 400, code: autherr.BadRequest},
		{name: "body_read_timeout_is_client_fault", reader: iotest.ErrReader(os.ErrDeadlineExceeded), contentLength: -1, status: 400, code: autherr.BadRequest},

		{name: "optional_empty_counts_as_object", optional: true, body: "", status: 400, code: autherr.ValidationFailed, fields: []string{"email", "password"}},
		{name: "optional_null_counts_as_object", optional: true, body: "null", status: 400, code: autherr.ValidationFailed, fields: []string{"email", "password"}},
		{name: "optional_still_decodes", optional: true, body: validBody, status: 200},
		{name: "optional_still_rejects_malformed", optional: true, body: "{", status: 400, code: autherr.BadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.reader
			if body == nil {
				body = strings.NewReader(tc.body)
			}
			rec := post(decodeHandler(tc.optional), tc.contentType, body, tc.contentLength)
			require.Equalf(t, tc.status, rec.Code, "body %.200q", rec.Body.String())
			if tc.status == 200 {
				var got loginRequest
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
				assert.Equal(t, "a@example.com", got.Email)
				return
			}
			env := decodeEnvelope(t, rec)
			assert.Equal(t, tc.code, env.Error.Code)
			if tc.msgContains != "" {
				assert.Contains(t, env.Error.Message, tc.msgContains)
			}
			if tc.fields != nil {
				fields, ok := env.Error.Details["fields"].(map[string]any)
				require.Truef(t, ok, "details.fields missing: %s", rec.Body.String())
				assert.ElementsMatch(t, tc.fields, keysOf(fields))
			} else {
				assert.Nil(t, env.Error.Details)
			}
		})
	}
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDecodeOversizeEnvelope pins the 413 envelope the contract promises.
func TestDecodeOversizeEnvelope(t *testing.T) {
	rec := post(decodeHandler(false), "application/json", strings.NewReader(bodyOfSize(t, web.MaxBodyBytes+1)), -1)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	assert.JSONEq(t, `{"error":{"code":"PAYLOAD_TOO_LARGE","message":"request body exceeds 64 KiB","requestId":""}}`, rec.Body.String())
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
}

type plainValidated struct{ N int }

func (p *plainValidated) Validate() error {
	if p.N < 0 {
		return errors.New("n must not be negative")
	}
	return nil
}

type selfDecoding struct{ Password secret }

type secret string

func (s *secret) UnmarshalJSON(b []byte) error {
	if string(b) == `"password"` {
		return autherr.New(autherr.WeakPassword, "password is too common")
	}
	return json.Unmarshal(b, (*string)(s))
}

type timed struct {
	At time.Time `json:"at"`
}

func decodeInto(t *testing.T, v any, body string) *autherr.Error {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	err := web.Decode(httptest.NewRecorder(), req, v)
	if err == nil {
		return nil
	}
	return autherr.Classify(err)
}

func TestDecodeEdgeCases(t *testing.T) {
	t.Run("plain_validate_error_is_validation_failed", func(t *testing.T) {
		e := decodeInto(t, &plainValidated{}, `{"N":-1}`)
		require.NotNil(t, e)
		assert.Equal(t, autherr.ValidationFailed, e.Code)
		assert.EqualError(t, e.Err, "n must not be negative")
	})
	t.Run("pointer_receiver_validate_passes", func(t *testing.T) {
		assert.Nil(t, decodeInto(t, &plainValidated{}, `{"N":1}`))
	})
	t.Run("field_unmarshaler_answers_for_itself", func(t *testing.T) {
		e := decodeInto(t, &selfDecoding{}, `{"Password":"password"}`)
		require.NotNil(t, e)
		assert.Equal(t, autherr.WeakPassword, e.Code)
	})
	t.Run("bad_timestamp_is_bad_request", func(t *testing.T) {
		e := decodeInto(t, &timed{}, `{"at":"yesterday"}`)
		require.NotNil(t, e)
		assert.Equal(t, autherr.BadRequest, e.Code)
	})
	t.Run("non_pointer_is_internal", func(t *testing.T) {
		e := decodeInto(t, loginRequest{}, validBody)
		require.NotNil(t, e)
		assert.Equal(t, autherr.Internal, e.Code, "a caller bug, not the client's")
	})
	t.Run("syntax_cause_kept_for_log", func(t *testing.T) {
		e := decodeInto(t, &loginRequest{}, `{"email":`)
		require.NotNil(t, e)
		var syn *json.SyntaxError
		assert.ErrorAs(t, e, &syn)
	})
}

func TestInvalid(t *testing.T) {
	fields := map[string]string{"password": "is too short", "email": "is required"}
	e := web.Invalid(fields)
	assert.Equal(t, autherr.ValidationFailed, e.Code)
	assert.Equal(t, "invalid fields: email, password", e.Message)
	fields["email"] = "changed after the call"
	assert.Equal(t, map[string]string{"password": "is too short", "email": "is required"}, e.Details["fields"], "Invalid copies the map")

	empty := web.Invalid(nil)
	assert.Equal(t, map[string]string{}, empty.Details["fields"])
	assert.Equal(t, "request validation failed", empty.Message)
}
