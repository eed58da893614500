// Package container is localpg's container step: PostgreSQL in a
// postgres:15-alpine container through testcontainers-go, for machines
// without a local server or binaries but with a Docker engine.
//
//	srv, err := localpg.Find(ctx, localpg.Options{Container: container.Step{}})
//
// It is a package of its own because testcontainers-go brings Docker's
// client with it (moby, OpenTelemetry, gopsutil, the testing package): a
// binary that does not import this package, such as the reference server,
// carries none of it.
package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/mana-how/mana-auth/localpg"
)

// containerImage is the image the container step runs.
const containerImage = "postgres:15-alpine"

// dockerWait is how long Available waits for a Docker engine to answer.
const dockerWait = 2500 * time.Millisecond

// Step is the container step; its zero value is ready to use.
type Step struct{}

var _ localpg.ContainerStep = Step{}

// Available reports whether a Docker engine answers within 2.5 s. An
// absent or silent engine is an error saying so, never a hang or a panic.
func (Step) Available(ctx context.Context) error {
	if err := dockerEngine(ctx, dockerWait); err != nil {
		return fmt.Errorf("no Docker engine (%w)", err)
	}
	return nil
}

// Start runs a postgres:15-alpine container and waits until it accepts
// connections; stop terminates it. testcontainers' reaper removes it
// should this process die first.
func (Step) Start(ctx context.Context, log *slog.Logger) (string, func() error, error) {
	return startContainer(ctx, log)
}

// dockerEngine reports whether a Docker engine answers within timeout,
// using testcontainers-go's own discovery (DOCKER_HOST, Docker contexts,
// ~/.testcontainers.properties, the default and rootless sockets). That
// discovery does not take a deadline everywhere, so it runs in a goroutine
// that is abandoned (and finishes on its own) when the timeout passes;
// a panic in it is an answer too.
func dockerEngine(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				res <- fmt.Errorf("docker discovery panicked: %v", r)
			}
		}()
		p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
		if err != nil {
			res <- err
			return
		}
		res <- p.Health(ctx) // Health closes p
	}()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %s", timeout)
	}
}

// startContainer runs containerImage and waits until it accepts
// connections.
func startContainer(ctx context.Context, log *slog.Logger) (string, func() error, error) {
	log.Info("localpg: starting a container", "image", containerImage)
	c, err := tcpostgres.Run(ctx, containerImage,
		testcontainers.WithLogger(slogPrintf{log}),
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("localpg: start %s container: %w", containerImage, err), terminate(c))
	}
	connURL, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("localpg: container connection string: %w", err), terminate(c))
	}
	log.Info("localpg: container ready", "url", redacted(connURL))
	return connURL, func() error { return terminate(c) }, nil
}

func terminate(c *tcpostgres.PostgresContainer) error {
	if c == nil {
		return nil
	}
	if err := testcontainers.TerminateContainer(c); err != nil {
		return fmt.Errorf("localpg: terminate container: %w", err)
	}
	return nil
}

// slogPrintf routes testcontainers' log lines to a slog.Logger.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(format string, v ...any) {
	l.log.Debug("localpg: testcontainers: " + fmt.Sprintf(format, v...))
}

// redacted hides the password of a URL for a log line.
func redacted(connURL string) string {
	u, err := url.Parse(connURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
