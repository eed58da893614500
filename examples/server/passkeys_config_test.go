package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPasskeyOrigins: the base URL's origin, and the CORS origins browsers
// run WebAuthn on for the RP ID. Negative control: taking every CORS
// origin would list the other site and the plain-http one.
func TestPasskeyOrigins(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": t.TempDir(),
		"MANA_AUTH_BASE_URL": "https://auth.example.com", "WEBAUTHN_RP_ID": "example.com",
		"MANA_AUTH_CORS_ORIGINS": "https://app.example.com,https://other.example.org,http://plain.example.com,https://example.com:8443"}))
	require.NoError(t, err)
	assert.Equal(t, []string{"https://auth.example.com", "https://app.example.com", "https://example.com:8443"}, passkeyOrigins(cfg))
}
