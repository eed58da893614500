// Package deps checks the import graph of the module's packages in tests:
// which packages a host pulls in when it imports one of ours (test files
// are not part of that graph), so that a leaf package stays a leaf.
package deps

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Module is the module path.
const Module = "github.com/mana-how/mana-auth"

// Graph is the transitive imports of a package.
type Graph struct {
	Pkg       string
	Listed    []string            // every package in the graph, pkg included
	Importers map[string][]string // package → packages of the graph that import it
}

// List runs `go list -deps` on pkg and fails the test when it cannot, or
// when the listing lacks pkg itself or any of mustHave (so that a broken
// listing cannot pass as "no forbidden imports").
func List(t testing.TB, pkg string, mustHave ...string) Graph {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its own GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("the go tool is needed to list dependencies: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.String())
	}
	g := Graph{Pkg: pkg, Importers: map[string][]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		g.Listed = append(g.Listed, fields[0])
		for _, imp := range fields[1:] {
			g.Importers[imp] = append(g.Importers[imp], fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read go list output: %v", err)
	}
	for _, want := range append([]string{pkg}, mustHave...) {
		if !slices.Contains(g.Listed, want) {
			t.Fatalf("go list -deps %s did not list %s; output:\n%s", pkg, want, out)
		}
	}
	return g
}

// Forbid fails the test for every package of g that forbidden matches,
// naming it and its importers; why says what the rule protects.
func (g Graph) Forbid(t testing.TB, forbidden func(pkg string) bool, why string) {
	t.Helper()
	for _, dep := range g.Listed {
		if dep != g.Pkg && forbidden(dep) {
			t.Errorf("%s depends on %s (imported by %s): %s", g.Pkg, dep, strings.Join(g.Importers[dep], ", "), why)
		}
	}
}

// IsDatabaseDriver matches database/sql itself, pgx and bun, but not
// database/sql/driver, which holds only interfaces (github.com/google/uuid
// implements driver.Valuer with it) and brings in no driver.
func IsDatabaseDriver(pkg string) bool {
	return pkg == "database/sql" ||
		strings.HasPrefix(pkg, "github.com/jackc/pgx") ||
		strings.HasPrefix(pkg, "github.com/uptrace/bun")
}

// Ours returns a matcher of the module's packages with the given paths
// below the module ("manaauth", "spaces", …), subpackages included.
func Ours(paths ...string) func(string) bool {
	return func(pkg string) bool {
		for _, p := range paths {
			full := Module + "/" + p
			if pkg == full || strings.HasPrefix(pkg, full+"/") {
				return true
			}
		}
		return false
	}
}
