package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/password"
)

// TestAdmissionBoundsRequestsInFlight: with as many requests in the
// handler as the admission holds, the next one is answered 503
// SERVICE_UNAVAILABLE with Retry-After 1 at once, without reaching the
// handler (a handler that ran for it would block on the barrier, and the
// test would hang); when one leaves, the next is let in. The default size
// is what the hasher runs and queues. The refusal closes its connection
// (without the Connection: close header the client keeps it and resp.Close
// is false).
func TestAdmissionBoundsRequestsInFlight(t *testing.T) {
	t.Parallel()
	h, err := password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 64, Time: 1}, MaxConcurrent: 1, MaxQueue: 2})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	adm, err := newAdmission(h, 0, reg, autherr.Writer{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.Equal(t, 3, cap(adm.slots), "one slot and a queue of two")

	entered, release := make(chan struct{}), make(chan struct{})
	var ran sync.WaitGroup
	mux := http.NewServeMux()
	mux.Handle("POST /login", adm.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	post := func() *http.Response {
		resp, err := http.Post(srv.URL+"/login", "application/json", strings.NewReader("{}"))
		require.NoError(t, err)
		return resp
	}
	codes := make(chan int, 3)
	for range 3 {
		ran.Go(func() {
			resp := post()
			resp.Body.Close()
			codes <- resp.StatusCode
		})
		<-entered
	}

	resp := post()
	defer resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.True(t, resp.Close, "a refused request's connection is closed, not kept open through the pause")
	env := decodeEnvelopeFrom(t, resp)
	assert.Equal(t, "SERVICE_UNAVAILABLE", env.Error.Code)
	assert.Equal(t, 1.0, promtest.ToFloat64(adm.shed.WithLabelValues("POST /login")))

	release <- struct{}{} // one leaves
	assert.Equal(t, http.StatusNoContent, <-codes)
	ran.Go(func() {
		resp := post()
		resp.Body.Close()
		codes <- resp.StatusCode
	})
	<-entered // let in
	close(release)
	ran.Wait()
	for range 3 {
		assert.Equal(t, http.StatusNoContent, <-codes)
	}
}

func decodeEnvelopeFrom(t *testing.T, resp *http.Response) envelope {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return decodeEnvelope(t, b)
}

// TestHashingRoutesAreMounted: every route the admission guards is a
// route the server mounts — a renamed route would otherwise slip out
// from under it unnoticed.
func TestHashingRoutesAreMounted(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t).Runtime
	cfg := testConfig(t)
	logger := slog.New(slog.DiscardHandler)
	s := newServer(serverDeps{Config: cfg, Logger: logger, Pool: db, Sources: sources()})
	a, err := newAuthStack(context.Background(), cfg, db, s.metrics.registry, logger)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, a.Close()) })
	s.mountAuth(a)
	for r := range hashingRoutes {
		assert.Contains(t, s.routes, r, "a hashing route the server does not mount")
	}
}
