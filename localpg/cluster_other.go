//go:build !unix

package localpg

import (
	"context"
	"errors"
	"log/slog"
)

var errNoBinaries = errors.New("clusters from local binaries are supported on Unix only")

var defaultBinGlobs []string

func startCluster(context.Context, string, *slog.Logger, []string) (*Server, error) {
	return nil, errNoBinaries
}

// StopCluster stops the persistent cluster in dir; on this system there is
// none to stop.
func StopCluster(dir string) error { return nil }
