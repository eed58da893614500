package manaauth_test

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoginEnumerationTiming guards account enumeration by timing (design.md,
// ASVS V6): an unknown email must cost what a wrong password costs — one
// full argon2id verification (DummyVerify) — so an attacker cannot sort a
// list of addresses into "has an account" and "has not" by the latency of
// /login. With the production parameters (m=19 MiB, t=2) a verification is
// tens to hundreds of milliseconds; skipping the dummy hash for unknown
// addresses makes their answers that much faster, far outside 15 %.
//
// 50 tries of each, interleaved (and alternating which goes first) so that
// drift in the machine's load hits both series alike; every try uses
// another address, so no lockout ever engages; the medians must be within
// 15 % of each other. The bodies must be identical but for requestId.
//
// Not parallel: timing is measured while this package's parallel tests
// wait. It takes 100 argon2id verifications, so -short skips it.
func TestLoginEnumerationTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 100 logins with production argon2id parameters (seconds); run without -short")
	}
	f := newFixture(t, fixtureOptions{params: sessDefaultParams})
	const n = 50
	known := make([]string, n)
	unknown := make([]string, n+2)
	for i := range known {
		known[i] = fmt.Sprintf("known-%02d@example.com", i)
	}
	for i := range unknown {
		unknown[i] = fmt.Sprintf("nobody-%02d@example.com", i)
	}
	sessSeedUsers(t, f, sessDefaultParams, sessPassword, append(known, "warmup@example.com")...)

	try := func(email string) (time.Duration, map[string]any) {
		t.Helper()
		start := time.Now()
		st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": email, "password": "Tr0ub4dor&3 is not it"}, nil)
		d := time.Since(start)
		require.Equal(t, http.StatusUnauthorized, st, "%s: %v", email, body)
		require.Equal(t, "INVALID_CREDENTIALS", errCode(body), "%s: %v", email, body)
		return d, body
	}
	// Warm up connections, caches and the hasher's first allocation.
	try("warmup@example.com")
	try(unknown[n])
	_, wrongBody := try("warmup@example.com")
	_, unknownBody := try(unknown[n+1])

	var tUnknown, tWrong []time.Duration
	for i := range n {
		if i%2 == 0 {
			d, _ := try(unknown[i])
			tUnknown = append(tUnknown, d)
			d, _ = try(known[i])
			tWrong = append(tWrong, d)
		} else {
			d, _ := try(known[i])
			tWrong = append(tWrong, d)
			d, _ = try(unknown[i])
			tUnknown = append(tUnknown, d)
		}
	}
	mu, mw := sessMedian(tUnknown), sessMedian(tWrong)
	diff := float64(mu-mw) / float64(max(mu, mw))
	t.Logf("median unknown email %v, wrong password %v, difference %.1f %%", mu, mw, 100*diff)
	assert.LessOrEqual(t, math.Abs(diff), 0.15, "unknown email %v vs wrong password %v: the timing tells whether an account exists", mu, mw)
	// A median this low means no argon2id ran at all on either branch.
	assert.Greater(t, min(mu, mw), 5*time.Millisecond, "logins answered without hashing")

	for _, b := range []map[string]any{wrongBody, unknownBody} {
		e, ok := b["error"].(map[string]any)
		require.True(t, ok, "%v", b)
		delete(e, "requestId")
	}
	assert.Equal(t, wrongBody, unknownBody, "the bodies tell whether an account exists")
	for _, e := range append(known, unknown...) {
		require.False(t, sessLockoutOf(t, f, e).locked, "%s locked: the series measured lockouts", e)
	}
}

func sessMedian(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
