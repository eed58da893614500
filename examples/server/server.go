package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	openapi "github.com/mana-how/mana-auth"
	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/migrate"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/vault"
	"github.com/mana-how/mana-auth/web"
)

// maxBody is api.md's request body limit.
const maxBody = 64 << 10

// server is the reference server's HTTP side: the mux, every route mounted
// on it (the OpenAPI test compares them with openapi.yaml) and the
// middleware around it.
type server struct {
	mux     *http.ServeMux
	routes  []string
	logger  *slog.Logger
	metrics *metrics
	ready   *readiness
	cors    []string
}

type serverDeps struct {
	Config  Config
	Logger  *slog.Logger
	Pool    *pgxpool.Pool // runtime role
	Sources []migrate.Source
}

func newServer(d serverDeps) *server {
	s := &server{mux: http.NewServeMux(), logger: d.Logger, metrics: newMetrics(d.Pool), cors: d.Config.CORSOrigins}
	ready := &readiness{pool: d.Pool, sources: d.Sources, logger: d.Logger, timeout: 2 * time.Second,
		errs: autherr.Writer{Logger: slog.New(slog.DiscardHandler)}}
	s.ready = ready

	s.handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := web.JSON(w, http.StatusOK, map[string]string{"status": "ok"}); err != nil {
			s.logger.Warn("write /healthz", "err", err)
		}
	}))
	s.handle("GET /readyz", ready)
	s.handle("GET /metrics", s.metrics.handler())
	s.handle("GET /openapi.yaml", openapi.Handler())
	// Every other path answers the error envelope, not the mux's text 404.
	s.mux.Handle("/", web.Handle(autherr.Writer{Logger: d.Logger}, func(w http.ResponseWriter, r *http.Request) error {
		return autherr.New(autherr.NotFound, "no such route")
	}))
	return s
}

// authPrefix is where the Auth section of api.md is mounted.
const authPrefix = "/api/v1/auth"

// mountAuth mounts the auth handler route by route (so that metrics and
// logs see each route's pattern) and the JWKS, and adds the key check to
// the readiness checks.
func (s *server) mountAuth(a *authStack) {
	// Vaults wrapped under a KEK the ring does not hold would all answer
	// 503: not ready until the key is configured again (see README,
	// "Moving off the development key").
	s.ready.addCheck("keys", 30*time.Second, func(ctx context.Context) ([]string, error) {
		unknown, err := a.vaultSvc.UnknownKEKs(ctx)
		if err != nil {
			return nil, err
		}
		if len(unknown) == 0 {
			return nil, nil
		}
		return []string{vault.UnknownKEKsError(unknown, a.keyIDs).Error()}, nil
	})
	inner := http.StripPrefix(authPrefix, a.handler)
	for _, p := range a.handler.Routes() {
		method, path, _ := strings.Cut(p, " ")
		if hashingRoutes[p] {
			s.handle(method+" "+authPrefix+path, a.admission.wrap(inner))
			continue
		}
		s.handle(method+" "+authPrefix+path, inner)
	}
	s.handle("GET /.well-known/jwks.json", a.tokens.JWKSHandler())

	// Everything under /api/v1/me passes the JWT middleware.
	me := token.MiddlewareWith(a.tokens, autherr.Writer{Logger: s.logger})
	vaultInner := me(http.StripPrefix(vaultPrefix, a.vault))
	for _, p := range a.vault.Routes() {
		method, path, _ := strings.Cut(p, " ")
		s.handle(method+" "+vaultPrefix+path, vaultInner)
	}
	// Single-route handlers are mounted on the exact path (a pattern
	// ending in "/" would be a subtree and redirect the bare path).
	s.handle("POST "+grantPath, me(http.StripPrefix(grantPath, a.grant)))
	s.handle("POST "+bootstrapPath, me(http.StripPrefix(bootstrapPath, a.boot)))

	// Organizations: the collection root is also served without the
	// trailing slash (StripPrefix would leave an empty path, which the
	// inner mux answers with a redirect).
	guilds := http.StripPrefix(guildsPrefix, a.spaces)
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = "/", ""
		a.spaces.ServeHTTP(w, r2)
	})
	for _, p := range a.spaces.Routes() {
		method, path, _ := strings.Cut(p, " ")
		if path == "/{$}" {
			s.handle(method+" "+guildsPrefix, root)
			// The same with the slash, as a courtesy; documented once.
			s.mux.Handle(method+" "+guildsPrefix+path, guilds)
			continue
		}
		s.handle(method+" "+guildsPrefix+path, guilds)
	}
}

// bootstrapPath and guildsPrefix are where api.md's Singleton bootstrap and
// Organizations sections are mounted.
const (
	bootstrapPath = "/api/v1/me/bootstrap-singletons"
	guildsPrefix  = "/api/v1/guilds"
)

// grantPath is the Mission key grants route of api.md.
const grantPath = "/api/v1/me/ai-mission-grant"

// vaultPrefix is where the Encryption vault section of api.md is mounted.
const vaultPrefix = "/api/v1/me/encryption-vault"

// checkReady runs the readiness checks once, logging what is missing.
func (s *server) checkReady(ctx context.Context) { s.ready.check(ctx) }

// handle mounts h at pattern and remembers the route.
func (s *server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

// Handler wraps the mux: request id, security headers, the body limit, and
// the access log and metrics (innermost, so they see the matched pattern).
func (s *server) Handler() http.Handler {
	var h http.Handler = s.mux
	h = s.observe(h)
	h = limitBody(h)
	h = web.CORS(s.cors)(h)
	h = web.SecurityHeaders(h)
	h = web.RequestID(h)
	return h
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe logs each request (never its query string, which may carry a
// token) and records it in the metrics by route pattern.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.observe(r.Pattern, r.Method, sw.code, d)
		level := slog.LevelInfo
		if sw.code >= 500 {
			level = slog.LevelWarn // the error itself was logged at error level where it happened
		}
		s.logger.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", r.Pattern),
			slog.Int("status", sw.code),
			slog.Duration("duration", d),
			slog.String("request_id", w.Header().Get("X-Request-Id")),
		)
	})
}
