package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckTargetRefusesHostsThatAreNotLoopback(t *testing.T) {
	cases := []struct {
		name, url, allow string
		ok               bool
	}{
		{"IPv4 loopback", "http://127.0.0.1:8080", "", true},
		{"another loopback address", "http://127.0.0.2:8080", "", true},
		{"IPv6 loopback", "http://[::1]:8080", "", true},
		{"localhost", "http://localhost:8080", "", true},
		{"a name under .localhost", "http://auth.localhost:8080", "", true},
		{"with a path", "https://127.0.0.1/auth/", "", true},
		{"a private address", "http://10.0.0.1:8080", "", false},
		{"an IPv4-mapped public address", "http://[::ffff:10.0.0.1]:8080", "", false},
		{"a public name", "https://auth.example.com", "", false},
		{"a name that merely starts with localhost", "http://localhost.example.com", "", false},
		{"named by -allow-host", "https://auth.example.com", "auth.example.com", true},
		{"named by -allow-host, other case", "https://Auth.Example.com", "auth.example.com", true},
		{"-allow-host naming another host", "https://auth.example.com", "staging.example.com", false},
		{"not http", "ftp://127.0.0.1", "", false},
		{"no host", "http://", "", false},
		{"a query", "http://127.0.0.1:8080/?x=1", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := checkTarget(tc.url, tc.allow)
			if tc.ok {
				require.NoError(t, err, "url %q allow %q", tc.url, tc.allow)
				assert.NotEmpty(t, u.Host)
				assert.NotContains(t, u.String(), "//auth/", "the trailing slash is trimmed")
				return
			}
			require.Error(t, err, "url %q allow %q", tc.url, tc.allow)
			assert.Contains(t, err.Error(), "-url")
		})
	}
	_, err := checkTarget("http://10.0.0.1:8080", "")
	assert.ErrorContains(t, err, "-allow-host 10.0.0.1", "the refusal says how to name the host")
}

func TestBadFlagsAreUsageErrorsNamingTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{}, "-scenario is required"},
		{[]string{"-scenario", "nope"}, `-scenario "nope": unknown; one of login, profile`},
		{[]string{"-scenario", "login", "-c", "0"}, "-c 0"},
		{[]string{"-scenario", "login", "-d", "0s"}, "-d 0s"},
		{[]string{"-scenario", "login", "-rate", "-1"}, "-rate -1"},
		{[]string{"-scenario", "login", "-users", "-3"}, "-users -3"},
		{[]string{"-scenario", "login", "-retry-after", "-rate", "5"}, "-retry-after: closed loop only"},
		{[]string{"-scenario", "login", "-timeout", "0s"}, "-timeout 0s"},
		{[]string{"-scenario", "login", "-seed-c", "0"}, "-seed-c 0"},
		{[]string{"-scenario", "login", "-url", "http://192.0.2.1"}, "not loopback"},
		{[]string{"-scenario", "login", "extra"}, `unexpected argument "extra"`},
		{[]string{"-scenario", "login", "-c", "many"}, `invalid value "many" for flag -c`},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		assert.Equal(t, exitUsage, code, "args %q: exit code; stderr %s", tc.args, stderr.String())
		assert.Contains(t, stderr.String(), tc.want, "args %q", tc.args)
		assert.Empty(t, stdout.String(), "args %q: nothing on stdout", tc.args)
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitOK, run(context.Background(), []string{"-h"}, &stdout, &stderr))
	for _, s := range scenarios() {
		assert.Contains(t, stderr.String(), s.Name, "-h lists every scenario")
	}
}

func TestUnreachableTargetIsAClearError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// Port 1 on loopback: nothing listens there.
	code := run(context.Background(), []string{"-scenario", "validate", "-url", "http://127.0.0.1:1", "-d", "1s"}, &stdout, &stderr)
	assert.Equal(t, exitErrors, code)
	assert.Contains(t, stderr.String(), "does not answer GET /healthz")
}

func TestClassifySortsAnswers(t *testing.T) {
	env := func(code string) []byte {
		return []byte(fmt.Sprintf(`{"error":{"code":%q,"message":"m","requestId":"r"}}`, code))
	}
	cases := []struct {
		name string
		a    answer
		oc   outcome
		code string
	}{
		{"the wanted status", answer{Want: 200, Status: 200, Body: []byte(`{}`)}, outcomeOK, ""},
		{"a 201 where 200 is wanted", answer{Want: 200, Status: 201}, outcomeError, "-"},
		{"503 with Retry-After is shed", answer{Want: 200, Status: 503, RetryAfter: true, Body: env("SERVICE_UNAVAILABLE")}, outcomeShed, "SERVICE_UNAVAILABLE"},
		{"503 without Retry-After is an error", answer{Want: 200, Status: 503, Body: env("SERVICE_UNAVAILABLE")}, outcomeError, "SERVICE_UNAVAILABLE"},
		{"503 of another code is an error", answer{Want: 200, Status: 503, RetryAfter: true, Body: env("GRANT_NOT_CONFIGURED")}, outcomeError, "GRANT_NOT_CONFIGURED"},
		{"401 with its code", answer{Want: 200, Status: 401, Body: env("TOKEN_INVALID")}, outcomeError, "TOKEN_INVALID"},
		{"/validate's 401 shape", answer{Want: 200, Status: 401, Body: []byte(`{"valid":false,"error":{"code":"TOKEN_EXPIRED","message":"x"}}`)}, outcomeError, "TOKEN_EXPIRED"},
		{"a body that is not the envelope", answer{Want: 200, Status: 502, Body: []byte("Bad Gateway")}, outcomeError, "-"},
		{"no answer", answer{Want: 200, Err: syscall.ECONNREFUSED}, outcomeError, "connection refused"},
		{"a timeout", answer{Want: 200, Err: context.DeadlineExceeded}, outcomeError, "timeout"},
		{"an open-loop error text", answer{Want: 200, Err: errors.New(`Post "http://x": read tcp: connection reset by peer`)}, outcomeError, "connection reset"},
		{"a cut answer", answer{Want: 200, Err: io.ErrUnexpectedEOF}, outcomeError, "connection closed"},
	}
	for _, tc := range cases {
		oc, key, _ := classify(tc.a)
		assert.Equal(t, tc.oc, oc, tc.name)
		assert.Equal(t, tc.code, key.Code, tc.name)
	}
}

func TestRecorderPercentilesAndFailures(t *testing.T) {
	r := newRecorder()
	r.Record(answer{Kind: "x", Want: 200, Status: 200, Latency: time.Hour}) // before recording starts: dropped
	r.recording.Store(true)
	for i := 1; i <= 1000; i++ {
		r.Record(answer{Kind: "x", Want: 200, Status: 200, Latency: time.Duration(i) * time.Millisecond})
	}
	for range 3 {
		r.Record(answer{Kind: "x", Want: 200, Status: 503, RetryAfter: true, Latency: 5 * time.Second,
			Body: []byte(`{"error":{"code":"SERVICE_UNAVAILABLE","message":"busy"}}`)})
	}
	r.Record(answer{Kind: "y", Want: 200, Status: 500, Body: []byte(`{"error":{"code":"INTERNAL","message":"bug"}}`)})
	s := r.summary(10 * time.Second)
	assert.EqualValues(t, 1004, s.requests)
	assert.EqualValues(t, 1000, s.ok)
	assert.EqualValues(t, 3, s.shed)
	assert.EqualValues(t, 1, s.errors)
	// HdrHistogram keeps 3 significant digits.
	assert.InDelta(t, 500, s.all.P50, 1)
	assert.InDelta(t, 900, s.all.P90, 1)
	assert.InDelta(t, 990, s.all.P99, 1)
	assert.InDelta(t, 1000, s.all.Max, 1)
	assert.Less(t, s.all.Max, 5000.0, "failed answers stay out of the successful latency")
	require.Len(t, s.errs, 2)
	assert.Equal(t, ErrorCount{Kind: "x", Status: 503, Code: "SERVICE_UNAVAILABLE", RetryAfter: true, Shed: true, Count: 3, Example: "busy"}, s.errs[0])
	assert.Equal(t, ErrorCount{Kind: "y", Status: 500, Code: "INTERNAL", Count: 1, Example: "bug"}, s.errs[1])
	require.Len(t, s.kinds, 2)
	assert.InDelta(t, 100.3, s.kinds[0].PerSec, 0.01)
}

func TestMixedCycleKeepsTheBlend(t *testing.T) {
	counts := map[string]int{}
	for _, k := range mixedCycle() {
		counts[k]++
	}
	assert.Equal(t, map[string]int{"login": 1, "refresh": 20, "validate": 200, "profile": 50}, counts)
	assert.Equal(t, mixedCycle(), mixedCycle(), "the same cycle every run")
}

func TestServerMemoryParsers(t *testing.T) {
	rss, hwm, err := parseProcStatus([]byte("Name:\tserver\nVmPeak:\t 2000 kB\nVmHWM:\t   61440 kB\nVmRSS:\t   30720 kB\nThreads:\t9\n"))
	require.NoError(t, err)
	assert.EqualValues(t, 30*mib, rss)
	assert.EqualValues(t, 60*mib, hwm)
	_, _, err = parseProcStatus([]byte("Name:\tzombie\n"))
	assert.ErrorContains(t, err, "no VmRSS")

	rss, err = parseMetricsRSS([]byte("# HELP process_resident_memory_bytes Resident memory size in bytes.\n" +
		"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 2.5165824e+07\nprocess_virtual_memory_bytes 1e+09\n"))
	require.NoError(t, err)
	assert.EqualValues(t, 24*mib, rss)
	_, err = parseMetricsRSS([]byte("go_goroutines 8\n"))
	assert.ErrorContains(t, err, "-pid")
}

func TestEnvelopeOf(t *testing.T) {
	assert.Equal(t, envelope{Code: "ACCOUNT_LOCKED", Message: "locked"},
		envelopeOf([]byte(`{"error":{"code":"ACCOUNT_LOCKED","message":"locked","remainingSeconds":3}}`)))
	assert.Equal(t, "-", envelopeOf([]byte(`<html>`)).Code)
	assert.Equal(t, "-", envelopeOf(nil).Code)
}

// TestOpenLoopLatencyCountsFromTheIntendedSend: against a server that
// answers at once, an open loop at 10/s measures latencies far below one
// period (100 ms). vegeta sends request n at (n+1) periods; counting from
// n periods (as the harness once did) adds a whole period to every
// latency, and this test then sees p50 ≥ 100 ms.
func TestOpenLoopLatencyCountsFromTheIntendedSend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	rec := newRecorder()
	d := &driver{base: srv.URL, hc: srv.Client(), rec: rec, src: SourceFunc(func(int) Call {
		return Call{Kind: "x", Method: http.MethodGet, Path: "/", Want: http.StatusNoContent}
	})}
	measured := d.runOpen(t.Context(), 10, 2, 0, 2*time.Second)
	s := rec.summary(measured)
	require.GreaterOrEqual(t, s.ok, int64(15), "the open loop sent about 20 requests")
	assert.Less(t, s.all.P50, 50.0, "p50 %.1f ms: latency counted from before the intended send", s.all.P50)
}

// TestClosedLoopHonorsRetryAfterWhenAsked: against a server that sheds
// everything with Retry-After: 1, two workers honoring it send about one
// call per second each; without -retry-after they call again at once
// (hundreds of calls). A worker that ignored RetryWait would make the
// first count as large as the second.
func TestClosedLoopHonorsRetryAfterWhenAsked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, err := w.Write([]byte(`{"error":{"code":"SERVICE_UNAVAILABLE","message":"busy"}}`))
		assert.NoError(t, err)
	}))
	t.Cleanup(srv.Close)
	count := func(retry bool) int64 {
		rec := newRecorder()
		d := &driver{base: srv.URL, hc: srv.Client(), rec: rec, retryAfter: retry, src: SourceFunc(func(int) Call {
			return Call{Kind: "x", Method: http.MethodPost, Path: "/", Want: http.StatusOK}
		})}
		measured := d.runClosed(t.Context(), 2, 0, 1500*time.Millisecond)
		s := rec.summary(measured)
		assert.Equal(t, s.requests, s.shed, "every answer is a shed 503 with Retry-After")
		return s.requests
	}
	polite, eager := count(true), count(false)
	assert.LessOrEqual(t, polite, int64(6), "workers honoring Retry-After: 1 for 1.5 s")
	assert.Greater(t, eager, int64(50), "workers calling again at once")
}
