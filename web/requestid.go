package web

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/mana-how/mana-auth/autherr"
)

// RequestIDHeader is the header that carries the request id both ways.
const RequestIDHeader = autherr.RequestIDHeader

// RequestID gives every request an id: the incoming X-Request-Id when it is
// sane (1 to 128 printable ASCII characters, no spaces), else 32 random hex
// digits (16 bytes from crypto/rand). The id is set on the response header,
// before next runs, so every answer carries it (autherr.Write reads it from
// there), and on the request header that next sees (RequestIDFrom).
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := r.Header.Values(RequestIDHeader)
		id := ""
		if len(in) == 1 && sane(in[0]) {
			id = in[0]
		} else {
			id = newRequestID()
			// Handlers must not modify the request they are given; hand on
			// a copy with its own header map.
			r2 := new(http.Request)
			*r2 = *r
			r2.Header = r.Header.Clone()
			if r2.Header == nil {
				r2.Header = make(http.Header)
			}
			r2.Header.Set(RequestIDHeader, id)
			r = r2
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

// RequestIDFrom returns the request id of r as set by RequestID, or "" when
// the request carries none (or an insane one: without the middleware the
// header is the client's).
func RequestIDFrom(r *http.Request) string {
	if id := r.Header.Get(RequestIDHeader); sane(id) {
		return id
	}
	return ""
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error; it crashes the program instead (Go 1.24+)
	return hex.EncodeToString(b)
}

// sane reports whether id is 1 to 128 printable ASCII characters without
// spaces: safe to echo in a header, a JSON body and a log line.
func sane(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
