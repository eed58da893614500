package bootstrap

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// UserFromRequest returns the authenticated user of r; required. Its
	// error is answered as is (an *autherr.Error such as UNAUTHORIZED); a
	// nil user with a nil error is answered UNAUTHORIZED. A host using
	// manaauth wraps the handler in token.Middleware and passes a
	// function built on token.ClaimsFromContext.
	UserFromRequest func(*http.Request) (uuid.UUID, error)
	// Spaces lists the spaces whose kontext documents a reconcile makes
	// sure of; required (a host without spaces passes a lister that
	// returns none).
	Spaces SpaceLister
	// Logger receives one record per failed request (WARN for 4xx, ERROR
	// for 5xx, with the cause). Nil: the Bootstrapper's Config.Logger when
	// one was set, else slog.Default() — errors are never discarded.
	Logger *slog.Logger
	// Observe is passed to the error writer (metrics).
	Observe func(e *autherr.Error, status int)
}

// Handler serves api.md's Singleton bootstrap section: POST to its mount
// point reconciles the caller's singletons. Mount it at
// /api/v1/me/bootstrap-singletons with http.StripPrefix, for that exact
// path (see the package documentation).
type Handler struct {
	mux    *http.ServeMux
	routes []string
}

// Routes lists the patterns the handler serves, relative to its mount
// point: "POST /" is the mount point itself, with or without a trailing
// slash.
func (h *Handler) Routes() []string { return append([]string(nil), h.routes...) }

// ServeHTTP serves r. The mount point stripped of its prefix is "" — the
// same route as "/" (the standard mux would redirect it, and a redirected
// POST loses its body in many clients).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "" {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = "/", ""
		r2.URL = &u
		r = r2
	}
	h.mux.ServeHTTP(w, r)
}

type handler struct {
	b    *Bootstrapper
	opts HandlerOptions
}

// NewHandler returns the HTTP handler of b. Its answers carry
// Cache-Control: no-store (they are the caller's own state).
func NewHandler(b *Bootstrapper, opts HandlerOptions) (*Handler, error) {
	if b == nil {
		return nil, errors.New("bootstrap: NewHandler: nil *Bootstrapper")
	}
	if opts.UserFromRequest == nil {
		return nil, errors.New("bootstrap: HandlerOptions.UserFromRequest is required")
	}
	if opts.Spaces == nil {
		return nil, errors.New("bootstrap: HandlerOptions.Spaces is required")
	}
	if opts.Logger == nil {
		opts.Logger = b.cfgLogger // may be nil too: autherr.Writer then logs to slog.Default()
	}
	bh := &handler{b: b, opts: opts}
	errs := autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}
	h := &Handler{mux: http.NewServeMux()}
	inner := web.Handle(errs, bh.reconcile)
	h.mux.Handle("POST /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		inner.ServeHTTP(w, r)
	}))
	h.routes = append(h.routes, "POST /")
	return h, nil
}

// reconcileResponse is api.md's answer.
type reconcileResponse struct {
	OK           bool   `json:"ok"`
	Bootstrapped Result `json:"bootstrapped"`
}

func (h *handler) reconcile(w http.ResponseWriter, r *http.Request) error {
	id, err := h.opts.UserFromRequest(r)
	if err != nil {
		return err
	}
	if id == uuid.Nil {
		return ErrNoUser
	}
	if err := web.DecodeOptional(w, r, &struct{}{}); err != nil {
		return err
	}
	res, err := h.b.Reconcile(r.Context(), id, h.opts.Spaces)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, reconcileResponse{OK: true, Bootstrapped: res})
}
