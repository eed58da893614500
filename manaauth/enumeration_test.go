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
// /login.
//
// Two checks. The work: every login of either kind runs exactly one
// argon2id computation (the hasher's count); skipping the dummy hash for
// unknown addresses makes theirs 0, hashing twice makes it 2 — an exact
// check no machine load can disturb. The time: with the production
// parameters (m=19 MiB, t=2) a verification is tens to hundreds of
// milliseconds, and the medians of 25 tries of each, interleaved
// (alternating which goes first, so drift in the machine's load hits both
// series alike), must be within 15 % of each other. A real difference is
// systematic and shows in every round; a busy machine's noise rarely does
// twice running — so the timing passes when one of up to three rounds is
// within bounds, and each round's figures are logged. Every try uses
// another address, so no lockout ever engages. The bodies must be
// identical but for requestId.
//
// Not parallel: timing is measured while this package's parallel tests
// wait. It takes up to 150 argon2id verifications, so -short skips it.
func TestLoginEnumerationTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("measures up to 150 logins with production argon2id parameters (seconds); run without -short")
	}
	f := newFixture(t, fixtureOptions{params: sessDefaultParams})
	const n, rounds = 25, 3
	known := make([]string, n*rounds)
	for i := range known {
		known[i] = fmt.Sprintf("known-%02d@example.com", i)
	}
	sessSeedUsers(t, f, sessDefaultParams, sessPassword, append(known, "warmup@example.com")...)
	unknownSeq := 0
	nextUnknown := func() string {
		unknownSeq++
		return fmt.Sprintf("nobody-%03d@example.com", unknownSeq)
	}

	try := func(email string) (time.Duration, map[string]any) {
		t.Helper()
		before := f.Hasher.Stats().Computed
		start := time.Now()
		st, body, _ := f.call(t, "POST", "/login", map[string]any{"email": email, "password": "Tr0ub4dor&3 is not it"}, nil)
		d := time.Since(start)
		require.Equal(t, http.StatusUnauthorized, st, "%s: %v", email, body)
		require.Equal(t, "INVALID_CREDENTIALS", errCode(body), "%s: %v", email, body)
		require.Equal(t, uint64(1), f.Hasher.Stats().Computed-before,
			"%s: argon2id computations for one failed login; an unknown address must cost what a wrong password costs", email)
		return d, body
	}
	// Warm up connections, caches and the hasher's first allocation.
	try("warmup@example.com")
	try(nextUnknown())
	_, wrongBody := try("warmup@example.com")
	_, unknownBody := try(nextUnknown())

	var diffs []string
	within := false
	for r := 0; r < rounds && !within; r++ {
		var tUnknown, tWrong []time.Duration
		for i := range n {
			k := known[r*n+i]
			if i%2 == 0 {
				d, _ := try(nextUnknown())
				tUnknown = append(tUnknown, d)
				d, _ = try(k)
				tWrong = append(tWrong, d)
			} else {
				d, _ := try(k)
				tWrong = append(tWrong, d)
				d, _ = try(nextUnknown())
				tUnknown = append(tUnknown, d)
			}
		}
		mu, mw := sessMedian(tUnknown), sessMedian(tWrong)
		diff := float64(mu-mw) / float64(max(mu, mw))
		t.Logf("round %d: median unknown email %v, wrong password %v, difference %.1f %%", r+1, mu, mw, 100*diff)
		diffs = append(diffs, fmt.Sprintf("%v vs %v (%.1f %%)", mu, mw, 100*diff))
		// A median this low means no argon2id ran at all on either branch.
		require.Greater(t, min(mu, mw), 5*time.Millisecond, "logins answered without hashing")
		within = math.Abs(diff) <= 0.15
	}
	assert.True(t, within, "unknown email vs wrong password in every round: %v — the timing tells whether an account exists", diffs)

	for _, b := range []map[string]any{wrongBody, unknownBody} {
		e, ok := b["error"].(map[string]any)
		require.True(t, ok, "%v", b)
		delete(e, "requestId")
	}
	assert.Equal(t, wrongBody, unknownBody, "the bodies tell whether an account exists")
	for _, e := range known {
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
