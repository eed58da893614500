package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CORS answers cross-origin requests from an explicit allow-list of
// origins ("https://app.example.com"), and only those: a request whose
// Origin is listed gets Access-Control-Allow-Origin with that origin,
// Access-Control-Allow-Credentials: true (so a page there may send the
// session cookie) and the headers it may read (X-Request-Id,
// Retry-After); a preflight (OPTIONS with Access-Control-Request-Method)
// is answered 204 with the methods and headers the API takes, cached 10
// minutes. Any other origin gets no CORS header at all, so the browser
// keeps the answer from its page; a preflight from it is answered 204
// without them. With an empty list CORS is off and every request passes
// through untouched (a preflight is then the mux's to answer).
func CORS(origins []string) func(http.Handler) http.Handler {
	allowed := slices.Clone(origins)
	return func(next http.Handler) http.Handler {
		if len(allowed) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			ok := slices.Contains(allowed, strings.ToLower(origin))
			if ok {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
			}
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				if ok {
					h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, X-CSRF-Token, X-Service-Key")
					h.Set("Access-Control-Max-Age", "600")
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if ok {
				h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ParseOrigins parses a comma-separated list of origins, as
// MANA_AUTH_CORS_ORIGINS holds: each scheme://host[:port] with scheme http
// or https and nothing else (no path, query or trailing slash; "*" is
// refused: credentials are never shared with every origin). They come back
// lower-cased. A bad entry is an error that names it.
func ParseOrigins(csv string) ([]string, error) {
	var out []string
	for _, entry := range strings.Split(csv, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		u, err := url.Parse(entry)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(entry, "/") {
			return nil, fmt.Errorf("web: origin %q: want scheme://host[:port] (http or https, nothing after the host)", entry)
		}
		out = append(out, strings.ToLower(entry))
	}
	return out, nil
}
