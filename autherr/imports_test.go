package autherr_test

import (
	"strings"
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestNoDatabaseDriverDependency lists autherr's transitive imports (test
// files are not part of the graph) and fails if a database driver is among
// them. autherr sits below packages that must stay driver-free — grant,
// whose issuer and unwrapper an AI service embeds, keeps its Postgres store
// in grant/grantpg — and every package of ours imports autherr, so a
// driver here would reach all of them. Re-adding an import of
// github.com/jackc/pgx/v5/pgconn (or any pgx, bun or database/sql package)
// to a non-test file of autherr makes this test fail, naming the driver
// package and the packages that import it.
func TestNoDatabaseDriverDependency(t *testing.T) {
	g := deps.List(t, deps.Module+"/autherr", "net/http", "log/slog")
	g.Forbid(t, deps.IsDatabaseDriver, "autherr must not pull a database driver into its importers (grant must stay driver-free)")
	g.Forbid(t, func(pkg string) bool { return strings.HasPrefix(pkg, deps.Module+"/") }, "autherr depends on nothing of ours")
}
