package mail_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestLeafDependencies: mail is a leaf; an import of manaauth, spaces or
// passkey (or of a database driver) in a non-test file of mail fails it.
func TestLeafDependencies(t *testing.T) {
	g := deps.List(t, deps.Module+"/mail", deps.Module+"/autherr", "github.com/wneessen/go-mail")
	g.Forbid(t, deps.Ours("manaauth", "spaces", "passkey", "mfa", "apikey"), "mail is a leaf below the capability packages")
	g.Forbid(t, deps.IsDatabaseDriver, "sending mail needs no database")
}
