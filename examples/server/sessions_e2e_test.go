package main

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type e2eSession struct {
	ID        uuid.UUID `json:"id"`
	UserAgent *string   `json:"userAgent"`
	Method    string    `json:"method"`
	Current   bool      `json:"current"`
}

func (f *e2eServer) sessions(bearer reqOpt) []e2eSession {
	f.t.Helper()
	return decodeJSON[struct {
		Sessions []e2eSession `json:"sessions"`
	}](f.t, f.expect(200, "GET", authPath("/sessions"), nil, bearer).body).Sessions
}

// e2eSessionManagement: api.md "Sessions" through the server — list,
// revoke one, revoke the others — and the live-session check on the
// routes that guard secrets: a revoked session's access token still
// verifies, yet the vault refuses it. Then an operator disables the
// account with `server users disable` and every credential path of the
// running server refuses it, until `server users enable`. 6 password
// operations.
func e2eSessionManagement(t *testing.T, f *e2eServer) {
	f.signup("sam@example.test", e2ePass1)
	one := f.login("sam@example.test", e2ePass1)
	two := f.login("sam@example.test", e2ePass1)
	b1, b2 := withBearer(one.AccessToken), withBearer(two.AccessToken)

	list := f.sessions(b1)
	require.Len(t, list, 2)
	assert.True(t, list[1].Current, "the older session is the caller's")
	assert.False(t, list[0].Current)
	assert.Equal(t, "password", list[0].Method)
	f.vaultKey(200, "POST", "/init", nil, b2)

	f.expect(204, "DELETE", authPath("/sessions/"+list[0].ID.String()), nil, b1)
	f.expectCode(401, "TOKEN_INVALID", "GET", vaultPath("/key"), nil, b2)
	f.expectCode(401, "TOKEN_INVALID", "GET", authPath("/sessions"), nil, b2)
	f.expectCode(401, "TOKEN_INVALID", "POST", authPath("/refresh"), map[string]any{"refreshToken": two.RefreshToken})
	f.claims(two.AccessToken) // /validate is stateless: still valid until it expires
	f.expectCode(404, "NOT_FOUND", "DELETE", authPath("/sessions/"+uuid.NewString()), nil, b1)

	three := f.login("sam@example.test", e2ePass1)
	f.expect(204, "POST", authPath("/sessions/revoke-others"), nil, b1)
	f.expectCode(401, "TOKEN_INVALID", "POST", authPath("/refresh"), map[string]any{"refreshToken": three.RefreshToken})
	list = f.sessions(b1)
	require.Len(t, list, 1)
	assert.True(t, list[0].Current)
	f.vaultKey(200, "GET", "/key", nil, b1)

	env := operatorEnv(t, f.db)
	out, err := runUsers(t, env, "disable", "sam@example.test")
	require.NoError(t, err)
	assert.Equal(t, "disabled sam@example.test; revoked 1 sessions\n", out)
	login := map[string]any{"email": "sam@example.test", "password": e2ePass1}
	f.expectCode(403, "ACCOUNT_DISABLED", "POST", authPath("/login"), login)
	f.expectCode(403, "ACCOUNT_DISABLED", "POST", authPath("/refresh"), map[string]any{"refreshToken": one.RefreshToken})
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", authPath("/login"),
		map[string]any{"email": "sam@example.test", "password": e2ePass2}) // a wrong password learns nothing
	_, err = runUsers(t, env, "enable", "sam@example.test")
	require.NoError(t, err)
	f.login("sam@example.test", e2ePass1)
}
