package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
)

var (
	specOnce sync.Once
	spec     *openapi3.T
	specErr  error
)

// loadSpec loads and validates openapi.yaml at the module root.
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	specOnce.Do(func() {
		// The hosted pages answer HTML, CSS and JavaScript: text, like
		// /metrics.
		for _, ct := range []string{"text/html", "text/css", "text/javascript"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
		}
		loader := openapi3.NewLoader()
		spec, specErr = loader.LoadFromFile("../../openapi.yaml")
		if specErr == nil {
			specErr = spec.Validate(context.Background())
		}
	})
	require.NoError(t, specErr, "openapi.yaml must load and validate")
	return spec
}

// documentedRoutes lists "METHOD /path" for every operation in the spec.
func documentedRoutes(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIDocumentsExactlyTheMountedRoutes(t *testing.T) {
	doc := loadSpec(t)
	s, _ := testServer(t, testutil.DB(t).Runtime)
	mounted := slices.Clone(s.routes)
	slices.Sort(mounted)
	documented := documentedRoutes(doc)
	// A route added to the server without documenting it (or documented
	// without mounting it) shows up in one of these diffs.
	for _, r := range mounted {
		require.Contains(t, documented, r, "mounted route %q is not in openapi.yaml", r)
	}
	for _, r := range documented {
		require.Contains(t, mounted, r, "openapi.yaml documents %q, which the server does not mount", r)
	}
}

// specClient sends real HTTP requests to a handler and validates every
// answer against openapi.yaml.
type specClient struct {
	t      testing.TB
	srv    *httptest.Server
	router routers.Router
}

func newSpecClient(t testing.TB, h http.Handler) *specClient {
	t.Helper()
	doc := loadSpec(t)
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &specClient{t: t, srv: srv, router: router}
}

// do sends the request and checks the response against the spec; it
// returns the response with its body read into the second result.
func (c *specClient) do(method, path string, body io.Reader, header http.Header) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.srv.URL+path, body)
	require.NoError(c.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.srv.Client().Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)

	// Validate against the operation the spec routes this request to.
	specReq, err := http.NewRequest(method, "http://localhost:8080"+path, nil)
	require.NoError(c.t, err)
	route, params, err := c.router.FindRoute(specReq)
	if err != nil {
		if strings.Contains(err.Error(), "no matching operation") && resp.StatusCode >= 400 {
			return resp, b // an undocumented path answered with an error: nothing to validate against
		}
		require.NoError(c.t, err, "%s %s is not in openapi.yaml", method, path)
	}
	in := &openapi3filter.RequestValidationInput{Request: specReq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(b)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	require.NoError(c.t, openapi3filter.ValidateResponse(context.Background(), out),
		"%s %s answered %d %s, which openapi.yaml does not allow", method, path, resp.StatusCode, b)
	return resp, b
}
