package manaauth_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/mailtest"
)

func TestSmokeRegisterVerifyLoginRefreshLogout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{requireVerification: true})
	st, body, _ := f.call(t, "POST", "/register", map[string]any{"email": " Smoke@Example.com", "password": "correct horse battery"}, nil)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	assert.Equal(t, "smoke@example.com", body["user"].(map[string]any)["email"])
	assert.Nil(t, body["accessToken"], "no tokens before verification")

	st, body, _ = f.call(t, "POST", "/login", map[string]any{"email": "smoke@example.com", "password": "correct horse battery"}, nil)
	require.Equal(t, http.StatusForbidden, st, "%v", body)
	assert.Equal(t, "EMAIL_NOT_VERIFIED", errCode(body))

	m := f.smtp.WaitFor(t, "smoke@example.com", 10*time.Second)
	tok := mailtest.TokenFromText(t, m.Text, "verify-email")
	st, body, _ = f.call(t, "POST", "/verify-email", map[string]any{"token": tok}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, true, body["user"].(map[string]any)["emailVerified"])

	st, body, resp := f.call(t, "POST", "/login", map[string]any{"email": "SMOKE@example.com ", "password": "correct horse battery"}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	access, refresh := body["accessToken"].(string), body["refreshToken"].(string)
	require.NotEmpty(t, access)
	require.NotEmpty(t, refresh)
	require.NotEmpty(t, resp.Cookies())

	st, body, _ = f.call(t, "GET", "/profile", nil, map[string]string{"Authorization": "Bearer " + access})
	require.Equal(t, http.StatusOK, st, "%v", body)

	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": refresh}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	child := body["refreshToken"].(string)
	assert.NotEqual(t, refresh, child)

	st, body, _ = f.call(t, "POST", "/logout", nil, map[string]string{"Authorization": "Bearer " + access})
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	st, body, _ = f.call(t, "POST", "/refresh", map[string]any{"refreshToken": child}, nil)
	require.Equal(t, http.StatusUnauthorized, st, "%v", body)
	assert.Equal(t, "TOKEN_INVALID", errCode(body))
}
