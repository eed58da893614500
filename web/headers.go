package web

import "net/http"

// SecurityHeaders sets, before next runs, the headers every answer of the
// auth API carries: X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer and Cache-Control: no-store (answers hold
// tokens and personal data). A handler may still override Cache-Control for
// a public document such as the JWKS. A host that serves other content can
// wrap only the auth routes.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// NoStore sets Cache-Control: no-store before next runs, for handlers
// whose answers hold key material, so that they carry it even on a host
// that does not wrap them in SecurityHeaders.
func NoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
