package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	openapi "github.com/mana-how/mana-auth"
)

func TestHandlerServesTheDocument(t *testing.T) {
	want, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		openapi.Handler().ServeHTTP(rec, httptest.NewRequest(method, "/openapi.yaml", nil))
		assert.Equal(t, http.StatusOK, rec.Code, method)
		assert.Equal(t, "application/yaml", rec.Header().Get("Content-Type"), method)
		if method == http.MethodGet {
			assert.Equal(t, string(want), rec.Body.String())
		} else {
			assert.Empty(t, rec.Body.String())
		}
	}
}

func TestDocumentIsACopy(t *testing.T) {
	d := openapi.Document()
	require.NotEmpty(t, d)
	d[0] = 'X'
	assert.NotEqual(t, byte('X'), openapi.Document()[0], "a caller's change must not reach the served document")
}
