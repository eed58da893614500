package grant_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestNoDatabaseDriverDependency lists the transitive imports of grant (an
// AI service embeds it; test files are not part of the graph) and fails if
// a database driver is among them: the Postgres store lives in
// grant/grantpg. Adding an import of pgx (or bun, or database/sql) to a
// non-test file of grant — or of anything grant imports, token included —
// fails it, naming the driver and its importers.
func TestNoDatabaseDriverDependency(t *testing.T) {
	g := deps.List(t, deps.Module+"/grant", deps.Module+"/autherr", "crypto/rsa", "net/http")
	g.Forbid(t, deps.IsDatabaseDriver, "grant must stay driver-free (the store belongs in grant/grantpg)")
	g.Forbid(t, deps.Ours("manaauth", "spaces", "passkey", "mfa", "apikey"), "the AI side embeds grant alone")
}
