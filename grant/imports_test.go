package grant_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoDatabaseDriverDependency lists the transitive imports of grant (an
// AI service embeds it; test files are not part of the graph) and fails if
// a database driver is among them: the Postgres store lives in
// grant/grantpg. Adding an import of pgx (or bun, or database/sql) to a
// non-test file of grant — or of anything grant imports — fails it, naming
// the driver and its importers.
func TestNoDatabaseDriverDependency(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to list dependencies: %v", err)
	}
	for _, pkg := range []string{"github.com/mana-how/mana-auth/grant"} {
		cmd := exec.Command(goTool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.String())
		}
		importers := map[string][]string{}
		var listed []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 {
				continue
			}
			listed = append(listed, fields[0])
			for _, imp := range fields[1:] {
				importers[imp] = append(importers[imp], fields[0])
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("read go list output: %v", err)
		}
		// The listing must be the real graph: the package itself and what
		// it certainly uses.
		for _, want := range []string{pkg, "github.com/mana-how/mana-auth/autherr", "crypto/rsa", "net/http"} {
			if !slices.Contains(listed, want) {
				t.Fatalf("go list -deps %s did not list %s; output:\n%s", pkg, want, out)
			}
		}
		for _, dep := range listed {
			if isDatabaseDriver(dep) {
				t.Errorf("%s depends on database package %s (imported by %s); grant must stay driver-free (the store belongs in grant/grantpg)",
					pkg, dep, strings.Join(importers[dep], ", "))
			}
		}
	}
}

// isDatabaseDriver matches database/sql itself but not database/sql/driver,
// which holds only interfaces (github.com/google/uuid implements
// driver.Valuer with it) and brings in no driver.
func isDatabaseDriver(pkg string) bool {
	return pkg == "database/sql" ||
		strings.HasPrefix(pkg, "github.com/jackc/pgx") ||
		strings.HasPrefix(pkg, "github.com/uptrace/bun")
}

// TestIsDatabaseDriver keeps the matcher honest: if it stopped matching
// these, the dependency test could not fail.
func TestIsDatabaseDriver(t *testing.T) {
	for _, pkg := range []string{"database/sql", "github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/pgxpool",
		"github.com/uptrace/bun", "github.com/uptrace/bun/driver/pgdriver"} {
		if !isDatabaseDriver(pkg) {
			t.Errorf("isDatabaseDriver(%q) = false", pkg)
		}
	}
	for _, pkg := range []string{"github.com/jackc/puddle/v2", "database/sql/driver", "net/http", "github.com/mana-how/mana-auth/grant", "github.com/mana-how/mana-auth/grant/grantpg"} {
		if isDatabaseDriver(pkg) {
			t.Errorf("isDatabaseDriver(%q) = true", pkg)
		}
	}
}
