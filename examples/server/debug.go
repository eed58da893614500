package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugServer serves net/http/pprof on MANA_AUTH_DEBUG_ADDR (loopback
// only, off by default), on a listener and mux of its own: nothing of it
// is reachable through the API's address, and the API's middleware,
// metrics and access log do not see it.
//
//	MANA_AUTH_DEBUG_ADDR=127.0.0.1:6060 server
//	go tool pprof -seconds 20 http://127.0.0.1:6060/debug/pprof/profile
type debugServer struct {
	srv  *http.Server
	done chan error
}

func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, …
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// startDebug listens on addr and serves the profiler until shutdown.
func startDebug(addr string, logger *slog.Logger) (*debugServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("MANA_AUTH_DEBUG_ADDR: %w", err)
	}
	d := &debugServer{done: make(chan error, 1), srv: &http.Server{
		Handler:           debugMux(),
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: a CPU profile or trace streams for as many
		// seconds as asked.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}}
	logger.Warn("debug listener serving net/http/pprof (MANA_AUTH_DEBUG_ADDR); leave it unset in production", "addr", ln.Addr().String())
	go func() { d.done <- d.srv.Serve(ln) }()
	return d, nil
}

// shutdown stops the listener, waiting for profiles in progress until ctx
// ends.
func (d *debugServer) shutdown(ctx context.Context) error {
	err := d.srv.Shutdown(ctx)
	if err != nil {
		// A profile still streaming when ctx ended: cut it.
		err = errors.Join(err, d.srv.Close())
	}
	if serr := <-d.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("debug listener: %w", err)
	}
	return nil
}
