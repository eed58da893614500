package web_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/stretchr/testify/require"
)

// envelope is the error body of api.md.
type envelope struct {
	Error struct {
		Code             autherr.Code   `json:"code"`
		Message          string         `json:"message"`
		RequestID        string         `json:"requestId"`
		RemainingSeconds int            `json:"remainingSeconds"`
		Details          map[string]any `json:"details"`
	} `json:"error"`
}

func decodeEnvelope(t testing.TB, rec *httptest.ResponseRecorder) envelope {
	t.Helper()
	var env envelope
	require.NoErrorf(t, json.Unmarshal(rec.Body.Bytes(), &env), "body %q is not an envelope", rec.Body.String())
	require.NotEmptyf(t, env.Error.Code, "body %q has no error code", rec.Body.String())
	return env
}

// logWriter returns an autherr.Writer that logs JSON into buf.
func logWriter(buf *bytes.Buffer) autherr.Writer {
	return autherr.Writer{Logger: slog.New(slog.NewJSONHandler(buf, nil))}
}

// quiet returns an autherr.Writer that logs nowhere.
func quiet() autherr.Writer {
	return autherr.Writer{Logger: slog.New(slog.DiscardHandler)}
}
