package manaauth_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mana-how/mana-auth/manaauth"
)

// sessFuzzSeeds are real request bodies and the hostile shapes a decoder
// meets: wrong JSON types, nesting, escapes, NUL bytes, invalid UTF-8,
// trailing data, a BOM, duplicate keys, huge numbers, over-long values.
func sessFuzzSeeds(email string) []string {
	return []string{
		`{"email":"` + email + `","password":"` + sessPassword + `"}`,
		`{"email":"` + strings.ToUpper(email) + ` ","password":"` + sessPassword + `"}`,
		`{"email":"` + email + `","password":"wrong password"}`,
		`{"email":"` + email + `","password":""}`,
		`{"email":"` + email + `"}`,
		`{"email":"new-user@example.com","password":"a perfectly fine passphrase","name":"New User"}`,
		`{"email":"nobody@example.com","password":"whatever it is"}`,
		`{"password":"x"}`,
		`{}`, `[]`, `null`, `""`, `0`, `true`, ``, ` `, `{`, `}`, `{"email":`,
		`{"email":1,"password":2}`,
		`{"email":["a@b.co"],"password":{"x":1}}`,
		`{"email":null,"password":null}`,
		`{"email":"a@b.co","password":"x"} {"email":"c@d.co"}`,
		`{"email":"a@b.co","email":"c@d.co","password":"x"}`,
		`{"email":"a\u0000@b.co","password":"x\u0000y"}`,
		`{"email":"\ud800@b.co","password":"\udfff"}`,
		"{\"email\":\"\xff\xfe@b.co\",\"password\":\"\xc3\x28\"}",
		"\xef\xbb\xbf{\"email\":\"a@b.co\",\"password\":\"x\"}",
		`{"email":"a@b.co","password":"x","name":"` + strings.Repeat("n", 300) + `"}`,
		`{"email":"a@b.co","password":"x","name":"line\nbreak"}`,
		`{"email":"` + strings.Repeat("a", 300) + `@b.co","password":"x"}`,
		`{"email":"a@b.co","password":"` + strings.Repeat("p", 2000) + `"}`,
		`{"email":"Name <a@b.co>","password":"x"}`,
		`{"email":"a@b.co","password":1e999}`,
		`{"email":"a@b.co","password":"x","extra":{"deep":[[[[[[[[[[[[]]]]]]]]]]]]}}`,
		`{"email":"' OR 1=1 --@b.co","password":"'; DROP TABLE auth.users; --"}`,
	}
}

// sessFuzzHandler serves one fixture's handler directly (no network), so
// each fuzz input costs one request's work.
func sessFuzzHandler(tb testing.TB, o fixtureOptions) (*fixture, http.Handler) {
	tb.Helper()
	f := newFixture(tb, o)
	return f, manaauth.NewHandler(f.svc, manaauth.HandlerOptions{})
}

// sessFuzzPost posts body to path and checks what every answer must be:
// never a panic (the recorder would not return), never 5xx — a malformed
// body is the client's fault (400/413), never INTERNAL or an outage — and
// every error is the JSON envelope with a code.
func sessFuzzPost(t *testing.T, h http.Handler, path string, body []byte, allowed map[int]bool) {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 || !allowed[rec.Code] {
		t.Fatalf("POST %s %q answered %d %s", path, body, rec.Code, rec.Body.Bytes())
	}
	if rec.Code >= 400 {
		var env struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Code == "" {
			t.Fatalf("POST %s %q answered %d without an error envelope: %s", path, body, rec.Code, rec.Body.Bytes())
		}
	}
}

// FuzzLoginDecode posts arbitrary bodies to /login. It guards the decoder
// and the login path against input that crashes them or reaches the
// database unvalidated (a NUL byte PostgreSQL refuses, an over-long value
// overflowing a column), which would answer 500 — or, worse, be
// classified as an outage. The allowed answers are api.md's login codes.
// The fixture is built once per fuzz process.
func FuzzLoginDecode(f *testing.F) {
	fx, h := sessFuzzHandler(f, fixtureOptions{})
	const email = "fuzz-login@example.com"
	sessRegister(f, fx, email, sessPassword)
	for _, s := range sessFuzzSeeds(email) {
		f.Add([]byte(s))
	}
	allowed := map[int]bool{200: true, 400: true, 401: true, 403: true, 413: true, 429: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		sessFuzzPost(t, h, "/login", body, allowed)
	})
}

// FuzzRegisterDecode posts arbitrary bodies to /register, which writes what
// it decodes (email, name, password hash) to the database: anything that
// passes validation but PostgreSQL refuses answers 500 here.
func FuzzRegisterDecode(f *testing.F) {
	fx, h := sessFuzzHandler(f, fixtureOptions{})
	const email = "fuzz-register@example.com"
	sessRegister(f, fx, email, sessPassword)
	for _, s := range sessFuzzSeeds(email) {
		f.Add([]byte(s))
	}
	allowed := map[int]bool{201: true, 400: true, 409: true, 413: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		sessFuzzPost(t, h, "/register", body, allowed)
	})
}
