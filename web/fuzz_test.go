package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
)

// FuzzDecode feeds arbitrary bodies and content types to Decode. It must
// never panic, answer only nil, BAD_REQUEST, VALIDATION_FAILED or
// PAYLOAD_TOO_LARGE (never a 5xx: nothing a client sends is our outage),
// 413 only when the body is over the limit (and always then, unless the
// Content-Type was refused first), and accept only bodies that are valid
// JSON (or empty, for DecodeOptional).
func FuzzDecode(f *testing.F) {
	for _, s := range []struct {
		body, ct string
		optional bool
	}{
		{validBody, "application/json", false},
		{validBody, "application/json; charset=utf-8", false},
		{`{"email":"a@example.com","password":"pw","extra":[1,{"x":null}]}`, "", false},
		{`{"email":42}`, "application/json", false},
		{`{"email":`, "application/json", false},
		{validBody + `{}`, "application/json", false},
		{`[]`, "", false},
		{`null`, "", true},
		{``, "", true},
		{``, "", false},
		{"\xef\xbb\xbf" + validBody, "", false}, // a UTF-8 byte order mark
		{`{"email":"a@example.com","password":"\u0000"}`, "", false},
		{validBody, "text/plain", false},
		{validBody, "application/json; charset=latin1", false},
		{strings.Repeat(" ", web.MaxBodyBytes) + "{}", "", false},
		{`{"email":"` + strings.Repeat("a", web.MaxBodyBytes) + `"}`, "", false},
	} {
		f.Add([]byte(s.body), s.ct, s.optional)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string, optional bool) {
		req := httptest.NewRequest(http.MethodPost, "/login", bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		var v loginRequest
		decode := web.Decode
		if optional {
			decode = web.DecodeOptional
		}
		err := decode(httptest.NewRecorder(), req, &v)
		if err == nil {
			trimmed := strings.Trim(string(body), " \t\r\n")
			if !(optional && (trimmed == "" || trimmed == "null")) && !json.Valid(body) {
				t.Fatalf("Decode accepted invalid JSON %q", body)
			}
			if len(body) > web.MaxBodyBytes {
				t.Fatalf("Decode accepted %d bytes", len(body))
			}
			return
		}
		e := autherr.Classify(err)
		switch e.Code {
		case autherr.BadRequest, autherr.ValidationFailed:
			// A refused Content-Type is reported before the body is read.
			if len(body) > web.MaxBodyBytes && (contentType == "" || contentType == "application/json") {
				t.Fatalf("body of %d bytes answered %s, want PAYLOAD_TOO_LARGE", len(body), e.Code)
			}
		case autherr.PayloadTooLarge:
			if len(body) <= web.MaxBodyBytes {
				t.Fatalf("body of %d bytes answered PAYLOAD_TOO_LARGE", len(body))
			}
		default:
			t.Fatalf("Decode(%q, %q) = %s (%v), want a 4xx request error", body, contentType, e.Code, err)
		}
		if e.Code == autherr.ValidationFailed {
			if _, ok := e.Details["fields"].(map[string]string); !ok {
				t.Fatalf("VALIDATION_FAILED without details.fields: %v", e)
			}
		}
	})
}

// FuzzClientIP: ClientIP never panics; without trusted proxies it is
// always RemoteAddr's address; with them it is RemoteAddr's address or an
// address that appears in X-Forwarded-For, and never an address from the
// header when RemoteAddr is not a trusted proxy.
func FuzzClientIP(f *testing.F) {
	for _, s := range [][2]string{
		{"203.0.113.7:51234", ""},
		{"203.0.113.7:51234", "1.2.3.4"},
		{"10.0.0.5:443", "198.51.100.1, 203.0.113.7, 10.0.0.2"},
		{"10.0.0.5:443", "203.0.113.9, garbage, 10.0.0.2"},
		{"10.0.0.5:443", "203.0.113.9,,10.0.0.2"},
		{"10.0.0.5:443", "[2001:db8::7]:8080, ::ffff:10.0.0.9"},
		{"[2001:db8:ffff::1]:443", "2001:db8::7, 2001:db8:ffff::2"},
		{"[fe80::1%eth0]:80", "fe80::2%lo"},
		{"@", "1.2.3.4"},
		{"", ""},
		{"10.0.0.5:443", strings.Repeat("10.0.0.1,", 100)},
	} {
		f.Add(s[0], s[1])
	}
	trusted, err := web.ParsePrefixes("10.0.0.0/8, 2001:db8:ffff::/48, ::1")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}

		plain := web.ClientIP(req, nil)
		withTrust := web.ClientIP(req, trusted)

		remoteAddr := web.ClientIP(&http.Request{RemoteAddr: remote, Header: http.Header{}}, nil)
		if plain != remoteAddr {
			t.Fatalf("without trusted proxies ClientIP = %v, want RemoteAddr's %v (xff %q)", plain, remoteAddr, xff)
		}
		if withTrust == remoteAddr {
			return
		}
		if !remoteAddr.IsValid() || !containsAny(trusted, remoteAddr) {
			t.Fatalf("untrusted RemoteAddr %q, yet ClientIP = %v from xff %q", remote, withTrust, xff)
		}
		if !withTrust.IsValid() {
			t.Fatalf("ClientIP = zero Addr for valid remote %q", remote)
		}
		found := false
		for _, entry := range strings.Split(xff, ",") {
			if a := web.ClientIP(&http.Request{RemoteAddr: strings.TrimSpace(entry), Header: http.Header{}}, nil); a == withTrust {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("ClientIP = %v, which is neither RemoteAddr %q nor in xff %q", withTrust, remote, xff)
		}
	})
}

func containsAny(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
