// Command server is mana-auth's reference server: every package of the
// module mounted on one mux, configured from the environment (see README.md
// and api.md). With no configuration at all it runs in development mode on a
// local PostgreSQL, which it starts privately when only the binaries are
// installed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/mana-how/mana-auth/apikey"
	"github.com/mana-how/mana-auth/bootstrap"
	"github.com/mana-how/mana-auth/grant/grantpg"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/mfa"
	"github.com/mana-how/mana-auth/migrate"
	"github.com/mana-how/mana-auth/passkey"
	"github.com/mana-how/mana-auth/password"
	"github.com/mana-how/mana-auth/spaces"
	"github.com/mana-how/mana-auth/vault"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if len(os.Args) < 2 || os.Args[1] == "serve" {
		// Here and not in run: tests run servers in their own process.
		if limit, ok := defaultMemoryLimit(os.Getenv, password.HasherConfig{}); ok {
			debug.SetMemoryLimit(limit)
		}
	}
	if err := command(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mana-auth: "+err.Error())
		os.Exit(1)
	}
}

// command runs the subcommand args name: help and version print to out,
// the server and rewrap log to logOut.
func command(ctx context.Context, args []string, getenv func(string) string, out, logOut io.Writer) error {
	switch {
	case len(args) == 0 || args[0] == "serve":
		return run(ctx, getenv, logOut, nil)
	case args[0] == "rewrap":
		return rewrap(ctx, getenv, logOut, args[1:])
	case args[0] == "migrate":
		return migrateCommand(ctx, getenv, out, logOut, args[1:])
	case args[0] == "users":
		return usersCommand(ctx, getenv, out, logOut, args[1:])
	case args[0] == "version":
		return version(out, args[1:])
	case args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		return writeHelp(out)
	default:
		return fmt.Errorf("unknown command %q (server --help lists the commands)", args[0])
	}
}

// version prints the build information, as text or with -json as JSON.
func version(out io.Writer, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(out)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b := currentBuild()
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	_, err := fmt.Fprintln(out, b.String())
	return err
}

// rewrap moves every vault row and every TOTP secret to the active KEK
// (the first of MANA_AUTH_KEKS), in batches; it can be interrupted and run
// again.
// Plaintext keys never leave the process.
func rewrap(ctx context.Context, getenv func(string) string, logOut io.Writer, args []string) error {
	fs := flag.NewFlagSet("rewrap", flag.ContinueOnError)
	fs.SetOutput(logOut)
	batch := fs.Int("batch", 500, "rows per transaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *batch < 1 {
		return fmt.Errorf("rewrap: -batch must be at least 1")
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, logOut)
	if cfg.KeyWarning != "" {
		logger.Warn(cfg.KeyWarning)
	}
	dbs, err := openDatabases(ctx, cfg, sources(), logger)
	if err != nil {
		return err
	}
	defer dbs.Close()
	svc, err := vault.New(vault.Config{Pool: dbs.runtime, Keys: cfg.Keys, Logger: logger})
	if err != nil {
		return err
	}
	moved, vaultErr := svc.Rewrap(ctx, *batch)
	logger.Info("rewrap finished", "moved", moved, "active_kek", cfg.Keys.ActiveKEKID())
	// The TOTP secrets are sealed under the same ring; they move even when
	// some vaults could not.
	moved, mfaErr := mfa.Rewrap(ctx, dbs.runtime, cfg.Keys, logger, *batch)
	logger.Info("rewrap of TOTP secrets finished", "moved", moved, "active_kek", cfg.Keys.ActiveKEKID())
	return errors.Join(vaultErr, mfaErr)
}

// sources is every migration source the server mounts, in order.
func sources() []migrate.Source {
	return []migrate.Source{
		migrate.Foundation(),
		manaauth.Source(),
		spaces.Source(),
		lockout.Source(),
		bootstrap.Source(),
		vault.Source(),
		grantpg.Source(),
		apikey.Source(),
		mfa.Source(),
		passkey.Source(),
	}
}

// run starts the server and serves until ctx ends, then shuts down
// gracefully. onListen, when set, receives the bound address.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer, onListen func(addr string)) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, logOut)
	if !cfg.Production {
		logger.Warn("development mode: secrets default to development values; set MANA_AUTH_ENV=production in production")
	}

	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	dbs, err := openDatabases(startCtx, cfg, sources(), logger)
	cancel()
	if err != nil {
		return err
	}
	defer dbs.Close()

	srv := newServer(serverDeps{Config: cfg, Logger: logger, Pool: dbs.runtime, Sources: sources()})
	auth, err := newAuthStack(ctx, cfg, dbs.runtime, srv.metrics.registry, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := auth.Close(); err != nil {
			logger.Warn("close auth stack", "err", err)
		}
	}()
	srv.mountAuth(auth)
	if err := srv.mountPages(cfg); err != nil {
		return err
	}
	// Report schema drift at start, before the first request.
	srv.checkReady(ctx)
	// Building the stack left garbage the runtime would hand back to the
	// system only minutes later (mostly the password hasher's dummy hash:
	// one argon2id computation, 19 MiB with the default parameters). Hand
	// it back now, so that an idle server's resident set is what it uses.
	debug.FreeOSMemory()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("MANA_AUTH_ADDR: %w", err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.DebugAddr != "" {
		dbg, err := startDebug(cfg.DebugAddr, logger)
		if err != nil {
			return errors.Join(err, ln.Close())
		}
		defer func() {
			shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := dbg.shutdown(shutCtx); err != nil {
				logger.Warn("stop the debug listener", "err", err)
			}
		}()
	}
	logger.Info("listening", "addr", ln.Addr().String(), "base_url", cfg.BaseURL.String(), "memory_limit", memoryLimit())
	if onListen != nil {
		onListen(ln.Addr().String())
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// newLogger logs at MANA_AUTH_LOG_LEVEL in MANA_AUTH_LOG_FORMAT.
func newLogger(cfg Config, out io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogJSON {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}
