package main

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// buildInfo is what `server version` prints and mana_auth_build_info
// carries: the module version and the VCS stamp the go command records
// when it builds from a checkout.
type buildInfo struct {
	Version   string `json:"version"`            // module version; "(devel)" when built from a checkout
	Revision  string `json:"revision,omitempty"` // vcs.revision
	Time      string `json:"time,omitempty"`     // vcs.time, RFC 3339
	Modified  bool   `json:"modified"`           // vcs.modified: uncommitted changes were built
	GoVersion string `json:"goVersion"`
}

// currentBuild reads the running binary's build information.
func currentBuild() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return buildInfo{Version: "unknown", GoVersion: runtime.Version()}
	}
	return buildFrom(bi)
}

func buildFrom(bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if b.Version == "" {
		b.Version = "unknown"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the one line `server version` prints, e.g.
// "mana-auth server (devel) revision 1a2b3c4 2026-12-06T18:00:00Z (modified) go1.26.8".
func (b buildInfo) String() string {
	parts := []string{"mana-auth server", b.Version}
	if b.Revision != "" {
		parts = append(parts, "revision", b.Revision)
	}
	if b.Time != "" {
		parts = append(parts, b.Time)
	}
	if b.Modified {
		parts = append(parts, "(modified)")
	}
	parts = append(parts, b.GoVersion)
	return strings.Join(parts, " ")
}

// collector is the mana_auth_build_info gauge: always 1, the build in its
// labels (the Prometheus convention for build information).
func (b buildInfo) collector() prometheus.Collector {
	revision := b.Revision
	if b.Modified {
		revision += "-modified"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mana_auth_build_info",
		Help:        "The running server's build: module version, VCS revision (with -modified for uncommitted changes) and Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": revision, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}
