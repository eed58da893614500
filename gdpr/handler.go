package gdpr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
)

// Limiter decides whether one more export of a user is allowed now;
// lockout's MemoryLimiter and RedisLimiter are two. An error means it
// could not decide (SERVICE_UNAVAILABLE); the export is refused then.
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// UserFromRequest returns the authenticated user of r; required (a
	// host using token.Middleware passes token.UserFromRequest). Its
	// error is answered as is.
	UserFromRequest func(*http.Request) (uuid.UUID, error)
	// Limiter limits exports per user (key "gdpr-export:<user id>");
	// required, since an export reads everything: the reference server
	// allows 5 per hour. A refusal is 429 RATE_LIMITED with Retry-After.
	Limiter Limiter
	// Delete deletes the account after checking its password, and with it
	// everything Service.Erase erases; required. Pass manaauth's
	// DeleteAccount (whose Hooks.UserDeletingTx runs Service.Erase), so
	// that DELETE /api/v1/me/data and DELETE /api/v1/auth/account are one
	// code path: the lock gate, the refusals of the hooks, one
	// transaction.
	Delete func(ctx context.Context, userID uuid.UUID, password string, c Client) error
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when finding the client's IP; none by default.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger // nil: the service's logger
	// Observe is passed to the error writer (metrics).
	Observe func(e *autherr.Error, status int)
}

// Handler serves GET (export) and DELETE (erasure) at its mount point,
// /api/v1/me/data in the reference server. Mount it for that exact path
// with http.StripPrefix (it answers the empty path StripPrefix leaves as
// "/"). Every answer carries Cache-Control: no-store.
type Handler struct {
	mux   *web.Mux
	serve http.Handler
}

// Routes lists the patterns the handler serves, relative to its mount
// point.
func (h *Handler) Routes() []string { return h.mux.Routes() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve.ServeHTTP(w, r) }

// NewHandler returns the HTTP handler of svc.
func NewHandler(svc *Service, opts HandlerOptions) (*Handler, error) {
	switch {
	case svc == nil:
		return nil, errors.New("gdpr: NewHandler: nil *Service")
	case opts.UserFromRequest == nil:
		return nil, errors.New("gdpr: HandlerOptions.UserFromRequest is required")
	case opts.Limiter == nil:
		return nil, errors.New("gdpr: HandlerOptions.Limiter is required (exports are expensive)")
	case opts.Delete == nil:
		return nil, errors.New("gdpr: HandlerOptions.Delete is required")
	}
	if opts.Logger == nil {
		opts.Logger = svc.logger
	}
	errs := autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}
	d := &dataHandler{svc: svc, opts: opts, errs: errs}
	m := web.NewMux(errs)
	m.Handle("GET /{$}", d.export)
	m.Handle("DELETE /{$}", web.Endpoint(http.StatusNoContent, d.erase))
	m.NotFoundElsewhere()
	h := &Handler{mux: m}
	h.serve = web.NoStore(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" {
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path, u.RawPath = "/", ""
			r2.URL = &u
			r = r2
		}
		m.ServeHTTP(w, r)
	}))
	return h, nil
}

type dataHandler struct {
	svc  *Service
	opts HandlerOptions
	errs autherr.Writer
}

func (d *dataHandler) client(r *http.Request) Client {
	return Client{IP: web.ClientIP(r, d.opts.TrustedProxies), UserAgent: web.UserAgent(r)}
}

// export answers the export as an attachment. An export cut short after
// its first byte (the database failed, a bug) is logged and the connection
// aborted, so that no client takes a truncated document for a whole one.
func (d *dataHandler) export(w http.ResponseWriter, r *http.Request) error {
	uid, err := d.opts.UserFromRequest(r)
	if err != nil {
		return err
	}
	ok, retry, err := d.opts.Limiter.Allow(r.Context(), "gdpr-export:"+uid.String())
	if err != nil {
		return fmt.Errorf("gdpr: export limit: %w", err)
	}
	if !ok {
		return limitError(retry)
	}
	started := false
	_, err = d.svc.Export(r.Context(), uid, d.client(r), func(at time.Time) io.Writer {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Disposition", `attachment; filename="mana-auth-export-`+at.Format("2006-01-02")+`.json"`)
		w.WriteHeader(http.StatusOK)
		started = true
		return w
	})
	if err != nil && started {
		d.errs.Log(r, fmt.Errorf("gdpr: export cut short, connection aborted: %w", err))
		panic(http.ErrAbortHandler)
	}
	return err
}

type passwordIn struct {
	Password string `json:"password"`
}

func (in passwordIn) Validate() error { return web.Required("password", in.Password) }

func (d *dataHandler) erase(_ http.ResponseWriter, r *http.Request, in passwordIn) (any, error) {
	uid, err := d.opts.UserFromRequest(r)
	if err != nil {
		return nil, err
	}
	return nil, d.opts.Delete(r.Context(), uid, in.Password, d.client(r))
}

// limitError is 429 RATE_LIMITED with RemainingSeconds (and so
// Retry-After) set to retry rounded up to whole seconds, at least 1.
func limitError(retry time.Duration) *autherr.Error {
	secs := int64(1)
	if retry > time.Second {
		secs = int64(retry / time.Second)
		if retry%time.Second != 0 {
			secs++
		}
	}
	return &autherr.Error{Code: autherr.RateLimited, Message: "too many exports; try again later",
		RemainingSeconds: int(min(secs, math.MaxInt32))}
}
