package vault_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestLeafDependencies: a host that mounts only the vault must not get
// the accounts stack. An import of manaauth, spaces or passkey in a
// non-test file of vault — or of anything it imports — fails it.
func TestLeafDependencies(t *testing.T) {
	g := deps.List(t, deps.Module+"/vault", deps.Module+"/autherr", "github.com/jackc/pgx/v5")
	g.Forbid(t, deps.Ours("manaauth", "spaces", "passkey", "mfa", "apikey", "password", "mail"),
		"vault needs only token, web, lockout and autherr below it")
}
