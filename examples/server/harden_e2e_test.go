package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// e2eRefreshGrace: MANA_AUTH_REFRESH_GRACE reaches manaauth. With a grace
// of 2 s on the auth stack's fake clock, a spent refresh token presented
// again 1.5 s later gets the same child (the grace the default 10 s would
// also give), and 2.5 s after it was spent it is a reuse that revokes the
// family — which the default 10 s would not be, so the test fails when
// the variable is ignored. 2 password operations.
func e2eRefreshGrace(t *testing.T, f *e2eServer) {
	require.Equal(t, 2*time.Second, f.cfg.RefreshGrace)
	clock := f.clock
	f.signup("rita@example.test", e2ePass1)
	p1 := f.login("rita@example.test", e2ePass1)
	p2 := f.refresh(p1.RefreshToken)
	clock.Advance(1500 * time.Millisecond)
	again := f.refresh(p1.RefreshToken)
	assert.Equal(t, p2.RefreshToken, again.RefreshToken, "within the grace the spent token gets the same child")
	clock.Advance(time.Second)
	ref := authPath("/refresh")
	f.expectCode(401, "TOKEN_INVALID", "POST", ref, map[string]any{"refreshToken": p1.RefreshToken}, "2.5 s after it was spent, past a 2 s grace")
	f.expectCode(401, "TOKEN_INVALID", "POST", ref, map[string]any{"refreshToken": p2.RefreshToken}, "the reuse revoked the family")
}

// e2eHasherSheds: a sign-in flood beyond the password hasher's bounds is
// answered 503 SERVICE_UNAVAILABLE with Retry-After by the hasher, and a
// shed sign-in does not count toward the lockout. The hasher has one slot
// and no queue (and t=6, so one computation outlasts the arrival of the
// others), and the admission in front of it is opened wide so that every
// request reaches it: twelve wrong passwords for twelve accounts, sent at
// once, are partly checked (401, one failure counted each) and partly shed
// by the hasher inside the login (503, nothing counted — if a shed attempt
// counted, its address would show a failure here). 13 password
// operations at most.
func e2eHasherSheds(t *testing.T, f *e2eServer) {
	shed := e2eFlood(t, f)
	_, body := f.c.do("GET", "/metrics", nil, nil)
	assert.Contains(t, string(body), fmt.Sprintf("mana_auth_password_hashes_shed_total %d\n", shed), "the hasher shed them")
	assert.Contains(t, string(body), "mana_auth_password_hash_slots 1\n")
}

// e2eAdmissionSheds: the same flood against the server as it runs, whose
// admission lets in only what the hasher can run and queue (here one
// request): the others are answered 503 with Retry-After before any
// database work, never reach the lockout gate and so count nothing. 13
// password operations at most.
func e2eAdmissionSheds(t *testing.T, f *e2eServer) {
	shed := e2eFlood(t, f)
	_, body := f.c.do("GET", "/metrics", nil, nil)
	assert.Contains(t, string(body), fmt.Sprintf(`mana_auth_http_shed_total{route="POST /api/v1/auth/login"} %d`+"\n", shed),
		"the admission shed them")
	assert.Contains(t, string(body), "mana_auth_password_hashes_shed_total 0\n", "the hasher itself never had to")
}

// e2eFlood registers twelve accounts one after the other, then sends a
// wrong password for each at once. Each answer is 401 with one failure
// counted, or 503 with Retry-After 1 and nothing counted; there must be
// some of both. It returns the number shed.
func e2eFlood(t *testing.T, f *e2eServer) (shed int) {
	const n = 12
	for i := range n {
		f.register(fmt.Sprintf("flood%d@example.test", i), e2ePass1) // sequential: each is let in
	}
	type answer struct {
		status int
		code   string
		retry  string
		err    error
	}
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			body := fmt.Sprintf(`{"email":"flood%d@example.test","password":%q}`, i, e2ePass2)
			resp, err := http.Post(f.c.srv.URL+authPath("/login"), "application/json", strings.NewReader(body))
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			var env envelope
			if err == nil {
				err = json.Unmarshal(b, &env)
			}
			answers[i] = answer{status: resp.StatusCode, code: env.Error.Code, retry: resp.Header.Get("Retry-After"), err: err}
		})
	}
	close(start)
	wg.Wait()

	var checked int
	for i, a := range answers {
		require.NoError(t, a.err, "login %d", i)
		email := fmt.Sprintf("flood%d@example.test", i)
		switch a.status {
		case http.StatusUnauthorized:
			checked++
			assert.Equal(t, "INVALID_CREDENTIALS", a.code)
			assert.Equal(t, 1, f.failuresCounted(email), "%s: a checked wrong password counts once", email)
		case http.StatusServiceUnavailable:
			shed++
			assert.Equal(t, "SERVICE_UNAVAILABLE", a.code)
			assert.Equal(t, "1", a.retry, "%s: a shed sign-in says when to retry", email)
			assert.Zero(t, f.failuresCounted(email), "%s: a shed sign-in must not count toward the lockout", email)
		default:
			t.Errorf("%s: status %d (%s)", email, a.status, a.code)
		}
	}
	t.Logf("%d checked, %d shed", checked, shed)
	assert.Positive(t, checked, "the slot served some")
	assert.Positive(t, shed, "one slot and no queue: twelve at once must shed some")
	// Once the flood is over the slot serves again.
	f.login("flood0@example.test", e2ePass1)
	return shed
}

// failuresCounted is the number of failures the lockout counts for email
// now, with the login attempts recorded as unsuccessful (they agree).
func (f *e2eServer) failuresCounted(email string) int {
	f.t.Helper()
	var failures, attempts int
	require.NoError(f.t, f.db.Owner.QueryRow(context.Background(),
		`SELECT coalesce((SELECT cardinality(failures) FROM auth.lockouts WHERE email = $1), 0),
		        (SELECT count(*) FROM auth.login_attempts WHERE email = $1 AND NOT successful)`, email).Scan(&failures, &attempts))
	assert.Equal(f.t, failures, attempts, "%s: counted failures and recorded failed attempts", email)
	return failures
}

// e2eOpenAPIDocument: GET /openapi.yaml serves the repository's
// openapi.yaml byte for byte (embedded by the module's root package), as
// application/yaml, and it is a valid OpenAPI document.
func e2eOpenAPIDocument(t *testing.T, f *e2eServer) {
	want, err := os.ReadFile("../../openapi.yaml")
	require.NoError(t, err)
	r := f.expect(200, "GET", "/openapi.yaml", nil)
	assert.Equal(t, "application/yaml", r.header.Get("Content-Type"))
	assert.Equal(t, string(want), string(r.body), "the served document is the repository's openapi.yaml")
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))
	assert.NotNil(t, doc.Paths.Find("/openapi.yaml"), "the document documents its own route")
}
