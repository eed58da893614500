package main

import (
	"strings"
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestServerBinaryCarriesNoTestCode: the reference server links no
// container client and no test code. localpg's container step
// (localpg/container, testcontainers-go) brings Docker's client,
// OpenTelemetry, gopsutil, testify and the testing package — about 4 MB
// of binary and 3–4 MiB of resident memory at rest. Importing
// localpg/container from the server (or testify from any package it
// links) fails this test.
func TestServerBinaryCarriesNoTestCode(t *testing.T) {
	g := deps.List(t, deps.Module+"/examples/server", deps.Module+"/localpg")
	g.Forbid(t, func(pkg string) bool {
		return pkg == "testing" || pkg == deps.Module+"/localpg/container" ||
			strings.HasPrefix(pkg, "github.com/testcontainers/") || strings.HasPrefix(pkg, "github.com/moby/") ||
			strings.HasPrefix(pkg, "github.com/stretchr/testify/") || strings.HasPrefix(pkg, "go.opentelemetry.io/")
	}, "a production binary carries no container client and no test code")
}
