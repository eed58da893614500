package web

import (
	"net/http"
	"slices"

	"github.com/mana-how/mana-auth/autherr"
)

// Mux is the router every package's handler is built on: Go 1.22 method
// patterns relative to the mount point, each a HandlerFunc whose error the
// one autherr.Writer answers, and the list of patterns for a host that
// mounts route by route (metrics by pattern, the OpenAPI coverage test).
type Mux struct {
	mux    *http.ServeMux
	errs   autherr.Writer
	routes []string
}

// NewMux returns an empty Mux answering errors through errs.
func NewMux(errs autherr.Writer) *Mux {
	return &Mux{mux: http.NewServeMux(), errs: errs}
}

// Handle serves fn at pattern ("POST /login"), inside the middleware mw
// (the first is the outermost).
func (m *Mux) Handle(pattern string, fn HandlerFunc, mw ...func(http.Handler) http.Handler) {
	var h http.Handler = Handle(m.errs, fn)
	for _, w := range slices.Backward(mw) {
		h = w(h)
	}
	m.mux.Handle(pattern, h)
	m.routes = append(m.routes, pattern)
}

// NotFoundElsewhere answers every path the Mux has no route for with the
// 404 NOT_FOUND envelope instead of net/http's plain-text page (and a wrong
// method with it too, as api.md has no 405 code).
func (m *Mux) NotFoundElsewhere() {
	m.mux.Handle("/", Handle(m.errs, func(http.ResponseWriter, *http.Request) error {
		return autherr.New(autherr.NotFound, "no such route")
	}))
}

// Routes lists the patterns served, relative to the mount point, in the
// order they were added.
func (m *Mux) Routes() []string { return slices.Clone(m.routes) }

// Errors is the writer the Mux answers errors with, for middleware that
// answers on its own.
func (m *Mux) Errors() autherr.Writer { return m.errs }

func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }
