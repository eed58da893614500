package web

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// JSON writes v as a JSON answer with the given status and
// Content-Type: application/json. v is encoded before anything is written,
// so an encoding error (INTERNAL) can still be answered with the envelope.
func JSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("web: encode response: %w", err)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("web: write response: %w", err)
	}
	return nil
}

// NoContent answers 204 No Content.
func NoContent(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNoContent)
}
