// Package openapi holds the HTTP contract of mana-auth's handlers: the
// repository's openapi.yaml, embedded, so that a server can publish the
// very document its tests validate against. Import it with an explicit
// name:
//
//	import openapi "github.com/mana-how/mana-auth"
//	mux.Handle("GET /openapi.yaml", openapi.Handler())
package openapi

import (
	"bytes"
	_ "embed" // the document
	"net/http"
	"time"
)

//go:embed openapi.yaml
var document []byte

// Document returns a copy of openapi.yaml (OpenAPI 3.0).
func Document() []byte { return bytes.Clone(document) }

// ContentType is the media type of the document (RFC 9512).
const ContentType = "application/yaml"

// Handler serves the document with its media type; HEAD and conditional
// requests are answered as net/http.ServeContent does.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		http.ServeContent(w, r, "openapi.yaml", time.Time{}, bytes.NewReader(document))
	})
}
