package localpg

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
)

// containerImage is the image the container step runs.
const containerImage = "postgres:15-alpine"

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
// connections. Close terminates it; testcontainers' reaper removes it
// should this process die first.
func startContainer(ctx context.Context, log *slog.Logger) (*Server, error) {
	log.Info("localpg: starting a container", "image", containerImage)
	c, err := tcpostgres.Run(ctx, containerImage,
		testcontainers.WithLogger(slogPrintf{log}),
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("localpg: start %s container: %w", containerImage, err), terminate(c))
	}
	connURL, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("localpg: container connection string: %w", err), terminate(c))
	}
	log.Info("localpg: container ready", "url", redacted(connURL))
	return &Server{URL: connURL, Source: SourceContainer, stop: func() error { return terminate(c) }}, nil
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
