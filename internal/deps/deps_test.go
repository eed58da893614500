package deps_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// The matchers must match what they name, or the dependency tests built on
// them could not fail.
func TestMatchers(t *testing.T) {
	for _, pkg := range []string{"database/sql", "github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/pgconn",
		"github.com/jackc/pgx/v5/pgxpool", "github.com/uptrace/bun", "github.com/uptrace/bun/driver/pgdriver"} {
		if !deps.IsDatabaseDriver(pkg) {
			t.Errorf("IsDatabaseDriver(%q) = false", pkg)
		}
	}
	for _, pkg := range []string{"github.com/jackc/puddle/v2", "database/sql/driver", "net/http",
		"github.com/mana-how/mana-auth/grant", "github.com/mana-how/mana-auth/grant/grantpg"} {
		if deps.IsDatabaseDriver(pkg) {
			t.Errorf("IsDatabaseDriver(%q) = true", pkg)
		}
	}
	ours := deps.Ours("manaauth", "spaces")
	for pkg, want := range map[string]bool{
		"github.com/mana-how/mana-auth/manaauth":  true,
		"github.com/mana-how/mana-auth/spaces":    true,
		"github.com/mana-how/mana-auth/spaces/x":  true,
		"github.com/mana-how/mana-auth/manaauthx": false,
		"github.com/mana-how/mana-auth/token":     false,
		"github.com/mana-how/mana-auth/mail":      false,
		"github.com/other/mana-auth/spaces":       false,
	} {
		if got := ours(pkg); got != want {
			t.Errorf("Ours(manaauth, spaces)(%q) = %v, want %v", pkg, got, want)
		}
	}
}

// List must see a real graph: a package of ours imports autherr.
func TestListSeesTheGraph(t *testing.T) {
	g := deps.List(t, deps.Module+"/web", deps.Module+"/autherr", "net/http")
	if len(g.Importers[deps.Module+"/autherr"]) == 0 {
		t.Fatalf("no importer of autherr recorded: %+v", g.Importers)
	}
}
