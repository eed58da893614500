package web_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestRequestID: a sane incoming id is echoed, a missing or insane one is
// replaced by a generated one; the handler and the response see the same
// id. If the sanity check were dropped, the reject rows fail (the client's
// value would be echoed into headers, bodies and logs).
func TestRequestID(t *testing.T) {
	cases := []struct {
		name string
		in   []string // X-Request-Id header values sent
		echo bool     // want the (single) value echoed
	}{
		{"echo", []string{"req-123"}, true},
		{"echo_uuid", []string{"3f2b8c1e-8a5d-4c2f-9b1a-7e6d5c4b3a29"}, true},
		{"echo_128_chars", []string{strings.Repeat("a", 128)}, true},
		{"echo_printable_punctuation", []string{"a!#$%&'*+-.^_`|~:/;=?@[]{}()<>\"\\,z"}, true},
		{"generate_when_missing", nil, false},
		{"reject_empty", []string{""}, false},
		{"reject_129_chars", []string{strings.Repeat("a", 129)}, false},
		{"reject_space", []string{"req 123"}, false},
		{"reject_tab", []string{"req\t123"}, false},
		{"reject_control", []string{"req\x01"}, false},
		{"reject_del", []string{"req\x7f"}, false},
		{"reject_non_ascii", []string{"req-ü"}, false},
		{"reject_two_values", []string{"a", "b"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var seen string
			h := web.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = web.RequestIDFrom(r)
				assert.Equal(t, seen, w.Header().Get(web.RequestIDHeader), "response header set before the handler runs")
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tc.in {
				req.Header.Add(web.RequestIDHeader, v)
			}
			before := req.Header.Clone()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			got := rec.Header().Get(web.RequestIDHeader)
			assert.Equal(t, seen, got, "handler and response ids differ")
			if tc.echo {
				assert.Equal(t, tc.in[0], got)
			} else {
				assert.Regexp(t, generatedID, got, "in %q", tc.in)
			}
			assert.Equal(t, before, req.Header, "the caller's request must not be modified")
		})
	}
}

func TestRequestIDGeneratedIDsDiffer(t *testing.T) {
	h := web.RequestID(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	seen := map[string]bool{}
	for range 100 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		id := rec.Header().Get(web.RequestIDHeader)
		require.Falsef(t, seen[id], "id %s generated twice", id)
		seen[id] = true
	}
}

// TestRequestIDInEnvelope: the error envelope carries the id the
// middleware chose. If autherr read the id from anywhere else, the
// generated case fails.
func TestRequestIDInEnvelope(t *testing.T) {
	h := web.RequestID(web.Handle(quiet(), func(w http.ResponseWriter, r *http.Request) error {
		return autherr.New(autherr.NotFound, "no such guild")
	}))
	for _, in := range []string{"client-id", "bad id"} {
		req := httptest.NewRequest(http.MethodGet, "/guilds/x", nil)
		req.Header.Set(web.RequestIDHeader, in)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		env := decodeEnvelope(t, rec)
		assert.Equal(t, rec.Header().Get(web.RequestIDHeader), env.Error.RequestID, "in %q", in)
		assert.NotEqual(t, "bad id", env.Error.RequestID)
	}
}

func TestRequestIDFromWithoutMiddleware(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	assert.Equal(t, "", web.RequestIDFrom(req))
	req.Header.Set(web.RequestIDHeader, "ok-id")
	assert.Equal(t, "ok-id", web.RequestIDFrom(req))
	req.Header.Set(web.RequestIDHeader, "not ok")
	assert.Equal(t, "", web.RequestIDFrom(req), "insane client value")
}
