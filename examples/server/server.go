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
	"github.com/mana-how/mana-auth/examples/server/pages"
	"github.com/mana-how/mana-auth/mfa"
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
	// admission bounds the password-hashing routes (hashingRoutes) that
	// handle mounts; nil until mountAuth.
	admission *admission
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

// mountPages mounts the hosted pages (api.md, "Hosted pages"): the sign-in
// page at the root alone, the other pages and the assets at their paths.
// Every other path, /api/… included, still answers the JSON 404 envelope.
func (s *server) mountPages(cfg Config) error {
	h, err := pages.New(pages.Options{Errors: autherr.Writer{Logger: s.logger},
		HSTS: cfg.BaseURL != nil && cfg.BaseURL.Scheme == "https"})
	if err != nil {
		return err
	}
	for _, p := range h.Routes() {
		s.mux.Handle(p, h)
		// "GET /{$}" is the root alone; openapi.yaml documents it as "/".
		s.routes = append(s.routes, strings.TrimSuffix(p, "{$}"))
	}
	return nil
}

// authPrefix is where the Auth section of api.md is mounted, and
// mfaPrefix its Multi-factor authentication section.
const (
	authPrefix = "/api/v1/auth"
	mfaPrefix  = authPrefix + "/mfa"
)

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
	// Likewise the TOTP secrets, sealed under the same ring: their owners
	// could not sign in.
	s.ready.addCheck("mfa keys", 30*time.Second, func(ctx context.Context) ([]string, error) {
		unknown, err := mfa.UnknownKEKs(ctx, a.pool, a.kek)
		if err != nil {
			return nil, err
		}
		if len(unknown) == 0 {
			return nil, nil
		}
		return []string{mfa.UnknownKEKsError(unknown, a.keyIDs).Error()}, nil
	})
	s.admission = a.admission
	inner := http.StripPrefix(authPrefix, a.handler)
	for _, p := range a.handler.Routes() {
		method, path, _ := strings.Cut(p, " ")
		s.handle(method+" "+authPrefix+path, inner)
	}
	s.handle("GET /.well-known/jwks.json", a.tokens.JWKSHandler())
	// The second factor: its handler checks the Bearer token and the live
	// session of its management routes itself.
	mfaInner := http.StripPrefix(mfaPrefix, a.mfa)
	for _, p := range a.mfa.Routes() {
		method, path, _ := strings.Cut(p, " ")
		s.handle(method+" "+mfaPrefix+path, mfaInner)
	}

	// Passkeys: their management routes check the bearer token and the
	// live session inside the handler. The list is also served at the
	// prefix without the trailing slash, like the organizations below.
	s.mountCollection(passkeysPrefix, a.passkeys, a.passkeys.Routes())

	// Everything under /api/v1/me passes the JWT middleware; the routes
	// that guard secrets (the vault, the grant) also the live-session
	// check, so a revoked session's token is refused within 5 s.
	errs := autherr.Writer{Logger: s.logger}
	me := token.MiddlewareWith(a.tokens, errs)
	live := func(h http.Handler) http.Handler { return me(a.live.Middleware(errs)(h)) }
	vaultInner := live(http.StripPrefix(vaultPrefix, a.vault))
	for _, p := range a.vault.Routes() {
		method, path, _ := strings.Cut(p, " ")
		s.handle(method+" "+vaultPrefix+path, vaultInner)
	}
	// Single-route handlers are mounted on the exact path (a pattern
	// ending in "/" would be a subtree and redirect the bare path).
	s.handle("POST "+grantPath, live(http.StripPrefix(grantPath, a.grant)))
	s.handle("POST "+bootstrapPath, me(http.StripPrefix(bootstrapPath, a.boot)))

	// Organizations and API keys: their collection roots are also served
	// without the trailing slash.
	s.mountCollection(guildsPrefix, a.spaces, a.spaces.Routes())
	s.mountCollection(apiKeysPrefix, a.keys, a.keys.Routes())

	// GDPR export and erasure, on the exact path.
	data := me(http.StripPrefix(dataPath, a.data))
	for _, p := range a.data.Routes() {
		method, _, _ := strings.Cut(p, " ")
		s.handle(method+" "+dataPath, data)
	}
}

// mountCollection mounts h under prefix route by route. Its collection
// root "/{$}" is served at the prefix itself (StripPrefix would leave an
// empty path, which the inner mux answers with a redirect) and, as a
// courtesy documented once, with the trailing slash too.
func (s *server) mountCollection(prefix string, h http.Handler, routes []string) {
	inner := http.StripPrefix(prefix, h)
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = "/", ""
		h.ServeHTTP(w, r2)
	})
	for _, p := range routes {
		method, path, _ := strings.Cut(p, " ")
		if path == "/{$}" {
			s.handle(method+" "+prefix, root)
			s.mux.Handle(method+" "+prefix+path, inner)
			continue
		}
		s.handle(method+" "+prefix+path, inner)
	}
}

// apiKeysPrefix and dataPath are where api.md's API keys and GDPR
// sections are mounted.
const (
	apiKeysPrefix = "/api/v1/api-keys" // #nosec G101 -- a route, not a credential
	dataPath      = "/api/v1/me/data"
)

// bootstrapPath and guildsPrefix are where api.md's Singleton bootstrap and
// Organizations sections are mounted.
const (
	bootstrapPath  = "/api/v1/me/bootstrap-singletons"
	guildsPrefix   = "/api/v1/guilds"
	passkeysPrefix = authPrefix + "/passkeys"
)

// grantPath is the Mission key grants route of api.md.
const grantPath = "/api/v1/me/ai-mission-grant"

// vaultPrefix is where the Encryption vault section of api.md is mounted.
const vaultPrefix = "/api/v1/me/encryption-vault"

// checkReady runs the readiness checks once, logging what is missing.
func (s *server) checkReady(ctx context.Context) { s.ready.check(ctx) }

// handle mounts h at pattern and remembers the route.
func (s *server) handle(pattern string, h http.Handler) {
	if hashingRoutes[pattern] && s.admission != nil {
		h = s.admission.wrap(h)
	}
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
