package token_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestLeafDependencies: a service that only verifies tokens imports token
// and gets neither the accounts stack nor a database driver. An import of
// manaauth, spaces or passkey (or of pgx, bun, database/sql) in a non-test
// file of token — or of anything it imports — fails it.
func TestLeafDependencies(t *testing.T) {
	g := deps.List(t, deps.Module+"/token", deps.Module+"/autherr", "github.com/golang-jwt/jwt/v5")
	g.Forbid(t, deps.Ours("manaauth", "spaces", "passkey", "mfa", "apikey"), "token is a leaf below the capability packages")
	g.Forbid(t, deps.IsDatabaseDriver, "a verify-only host must not need a database driver")
}
