package password_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestLeafDependencies: password is a leaf; an import of manaauth, spaces
// or passkey (or of a database driver) in a non-test file of password
// fails it.
func TestLeafDependencies(t *testing.T) {
	g := deps.List(t, deps.Module+"/password", deps.Module+"/autherr", deps.Module+"/internal/argon2")
	g.Forbid(t, deps.Ours("manaauth", "spaces", "passkey", "mfa", "apikey"), "password is a leaf below the capability packages")
	g.Forbid(t, deps.IsDatabaseDriver, "hashing needs no database")
}
