package autherr_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
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
	goTool, err := exec.LookPath("go") // go test puts its own GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("the go tool is needed to list dependencies: %v", err)
	}
	const pkg = "github.com/mana-how/mana-auth/autherr"
	cmd := exec.Command(goTool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.String())
	}

	importers := map[string][]string{} // package -> packages in the graph that import it
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
	// The listing must be the real graph: autherr itself and some of the
	// standard library it certainly uses.
	for _, want := range []string{pkg, "net/http", "log/slog"} {
		if !slices.Contains(listed, want) {
			t.Fatalf("go list -deps %s did not list %s; output:\n%s", pkg, want, out)
		}
	}

	for _, dep := range listed {
		if isDatabaseDriver(dep) {
			t.Errorf("autherr depends on database package %s (imported by %s); autherr must not pull a database driver into its importers (grant must stay driver-free)",
				dep, strings.Join(importers[dep], ", "))
		}
	}
}

func isDatabaseDriver(pkg string) bool {
	return pkg == "database/sql" ||
		strings.HasPrefix(pkg, "github.com/jackc/pgx") ||
		strings.HasPrefix(pkg, "github.com/uptrace/bun")
}

// TestIsDatabaseDriver keeps the matcher above honest: if it stopped
// matching one of these, the dependency test could not fail.
func TestIsDatabaseDriver(t *testing.T) {
	for _, pkg := range []string{"database/sql", "github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/pgconn", "github.com/uptrace/bun", "github.com/uptrace/bun/driver/pgdriver"} {
		if !isDatabaseDriver(pkg) {
			t.Errorf("isDatabaseDriver(%q) = false", pkg)
		}
	}
	for _, pkg := range []string{"github.com/jackc/puddle/v2", "net/http", "github.com/mana-how/mana-auth/autherr"} {
		if isDatabaseDriver(pkg) {
			t.Errorf("isDatabaseDriver(%q) = true", pkg)
		}
	}
}
