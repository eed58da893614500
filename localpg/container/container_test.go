package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/localpg"
)

func TestDockerEngineAbsent(t *testing.T) {
	t.Parallel()
	// No Docker engine runs where this suite runs (the docker CLI may be
	// installed); the check must say so quickly and without panicking.
	start := time.Now()
	err := dockerEngine(context.Background(), dockerWait)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 30*time.Second, "gives up instead of hanging")
	t.Log(err)
}

func TestDockerEngineSilent(t *testing.T) {
	t.Parallel()
	// An engine address that accepts connections and never answers must
	// not stall Find. testcontainers caches its discovery per process, so
	// the check runs in a fresh process (TestHelperChild).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // keep it open, say nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		assert.NoError(t, l.Close())
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			assert.NoError(t, c.Close())
		}
	})

	out := runChild(t, "docker", "DOCKER_HOST=tcp://"+l.Addr().String())
	fields := strings.Fields(childResult(t, out))
	require.Len(t, fields, 2, "child output %q", out)
	elapsed, err := time.ParseDuration(fields[0])
	require.NoError(t, err)
	assert.Equal(t, "error", fields[1], "a silent engine was taken for a working one")
	// Without the timeout the call blocks on the silent engine until the
	// child is killed at runChild's one-minute limit; with it, it returns
	// after dockerWait (2.5 s) plus whatever a loaded machine adds to
	// starting a process — a generous bound tells the two apart without
	// failing on a slow machine.
	assert.Less(t, elapsed, 10*dockerWait, "the check stalled on a silent engine")
	mu.Lock()
	defer mu.Unlock()
	assert.NotEmpty(t, held, "the child never tried the engine address, so its timeout went untested")
}

// TestStepAvailableSaysWhy: without an engine, the step's error says what
// is missing, and Find lists it among the reasons of its one-line error.
func TestStepAvailableSaysWhy(t *testing.T) {
	t.Parallel()
	// No Docker engine runs where this suite runs (as TestDockerEngineAbsent).
	err := Step{}.Available(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no Docker engine")
	_, err = localpg.Find(context.Background(), localpg.Options{SkipLocal: true, NoCluster: true, Container: Step{},
		Logger: slog.New(slog.DiscardHandler)})
	require.Error(t, err)
	assert.True(t, errors.Is(err, localpg.ErrNotFound), "%v", err)
	assert.Contains(t, err.Error(), "container: no Docker engine")
}

// runChild runs TestHelperChild in a new process of this test binary with
// CONTAINER_CHILD=mode and returns its standard output.
func runChild(t *testing.T, mode string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperChild$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), "CONTAINER_CHILD="+mode), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "child %s failed:\n%s\n%s", mode, out, stderr.String())
	return string(out)
}

const childPrefix = "CONTAINER_CHILD_RESULT "

func childResult(t *testing.T, out string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), childPrefix); ok {
			return rest
		}
	}
	t.Fatalf("no %q line in child output:\n%s", childPrefix, out)
	return ""
}

// TestHelperChild is not a test of its own: it is the body of the child
// process that TestDockerEngineSilent starts, and returns at once
// otherwise.
func TestHelperChild(t *testing.T) {
	if os.Getenv("CONTAINER_CHILD") != "docker" {
		return
	}
	start := time.Now()
	err := dockerEngine(context.Background(), dockerWait)
	verdict := "ok"
	if err != nil {
		verdict = "error"
	}
	fmt.Printf("%s%s %s\n", childPrefix, time.Since(start), verdict)
}
