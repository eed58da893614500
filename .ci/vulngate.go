//go:build ignore

// vulngate reads `govulncheck -format json` on stdin, prints every finding
// and decides: it fails when the code calls a vulnerable function of a
// module (fix: go get the fixed version), or of the standard library when
// even the toolchain go.mod asks for is older than the fix. Standard
// library findings that the go.mod toolchain fixes are printed but pass:
// the machine's Go is older, and builds that honour go.mod's toolchain
// line (GOTOOLCHAIN=auto, the default) use the fixed release. Findings in
// packages or modules the code imports but does not call are printed as
// notes.
//
// Usage: govulncheck -format json ./... | go run .ci/vulngate.go -toolchain go1.26.10
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/version"
	"io"
	"os"
	"sort"
	"strings"
)

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
}

type message struct {
	Config *struct {
		DB           string `json:"db"`
		GoVersion    string `json:"go_version"`
		ScannerVer   string `json:"scanner_version"`
		DBLastChange string `json:"db_last_modified"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string  `json:"osv"`
		FixedVersion string  `json:"fixed_version"`
		Trace        []frame `json:"trace"`
	} `json:"finding"`
}

type finding struct {
	id, module, found, fixed, level, example string
}

func main() {
	toolchain := flag.String("toolchain", "", "the toolchain go.mod asks for (e.g. go1.26.10); empty: the running go")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *toolchain); err != nil {
		fmt.Fprintln(os.Stderr, "vulngate: "+err.Error())
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, toolchain string) error {
	summaries := map[string]string{}
	found := map[string]*finding{} // by id and module: the deepest level seen
	rank := map[string]int{"module": 0, "package": 1, "symbol": 2}
	localGo := ""
	dec := json.NewDecoder(in)
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("reading govulncheck's JSON: %w", err)
		}
		switch {
		case m.Config != nil:
			localGo = m.Config.GoVersion
			fmt.Fprintf(out, "govulncheck %s, database %s (last modified %s), %s\n",
				m.Config.ScannerVer, m.Config.DB, m.Config.DBLastChange, m.Config.GoVersion)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f, top := m.Finding, m.Finding.Trace[0]
			level, example := "module", top.Module
			switch {
			case top.Function != "":
				level = "symbol"
				// The trace runs from the vulnerable function to our code.
				last := f.Trace[len(f.Trace)-1]
				example = fmt.Sprintf("%s.%s reaches %s.%s", last.Package, last.Function, top.Package, top.Function)
			case top.Package != "":
				level, example = "package", top.Package
			}
			key := f.OSV + " " + top.Module
			if old, ok := found[key]; ok && rank[old.level] >= rank[level] {
				continue
			}
			found[key] = &finding{id: f.OSV, module: top.Module, found: top.Version, fixed: f.FixedVersion, level: level, example: example}
		}
	}
	if toolchain == "" {
		toolchain = localGo
	}
	keys := make([]string, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var failures, passed, notes []string
	for _, k := range keys {
		f := found[k]
		line := fmt.Sprintf("%s %s@%s (fixed in %s): %s — %s", f.id, f.module, f.found, orNone(f.fixed), summaries[f.id], f.example)
		switch {
		case f.level == "module":
			notes = append(notes, line+" [module required, vulnerable package not imported]")
		case f.level == "package":
			notes = append(notes, line+" [package imported, vulnerable code not called]")
		case f.module == "stdlib" && f.fixed != "" && version.Compare(goVersion(f.fixed), toolchain) <= 0:
			passed = append(passed, line)
		default:
			failures = append(failures, line)
		}
	}
	section := func(title string, lines []string) {
		if len(lines) > 0 {
			fmt.Fprintf(out, "%s (%d):\n  %s\n", title, len(lines), strings.Join(lines, "\n  "))
		}
	}
	section("Present but never called (no action needed)", notes)
	section(fmt.Sprintf("Called, in the standard library of %s, fixed by the toolchain go.mod asks for (%s): build releases with it", localGo, toolchain), passed)
	section("Called and not fixed by any version this repository asks for", failures)
	if len(failures) > 0 {
		return fmt.Errorf("%d vulnerabilities reach the code: upgrade the module (go get MODULE@FIXED) or raise go.mod's toolchain line", len(failures))
	}
	fmt.Fprintln(out, "no vulnerability reaches the code with the versions go.mod asks for")
	return nil
}

// goVersion turns a module-style stdlib version (v1.26.9) into a Go
// version (go1.26.9).
func goVersion(v string) string { return "go" + strings.TrimPrefix(v, "v") }

func orNone(s string) string {
	if s == "" {
		return "no release yet"
	}
	return s
}
