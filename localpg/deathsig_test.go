//go:build linux

package localpg

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestThrowawayDiesWithParent(t *testing.T) {
	t.Parallel()
	// The child (TestHelperChild) starts a throwaway cluster, prints it,
	// waits for its stdin to close and exits without Close and without a
	// TestMain.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperChild$", "-test.count=1", "-test.v")
	// A private TMPDIR keeps the other tests' Finds from cleaning up the
	// child's directory first. It lies under a 0700 directory of ours, so
	// as root this also covers a data directory the user postgres cannot
	// reach by path.
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "LOCALPG_CHILD=throwaway", "TMPDIR="+tmp)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	// exec copies the child's stderr from a goroutine of its own while this
	// one may read it for a failure message: the buffer takes a lock.
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	waited := false
	t.Cleanup(func() {
		if !waited {
			assert.NoError(t, cmd.Process.Kill())
			_ = cmd.Wait() // killed on purpose: its status says nothing
		}
	})

	var out strings.Builder
	var result string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), childPrefix); ok {
			result = rest
			break
		}
	}
	require.NotEmpty(t, result, "child printed no result:\n%s\n%s", out.String(), stderr.String())
	fields := strings.Fields(result)
	require.Len(t, fields, 2, "child result %q", result)
	childURL, dir := fields[0], fields[1]
	require.Equal(t, tmp, filepath.Dir(dir))
	port := portOf(t, childURL)

	// Negative control: the cluster answers while the child lives.
	requireSuperuser(t, childURL)

	require.NoError(t, stdin.Close()) // the child returns and its process exits
	_, err = io.Copy(&out, stdout)
	require.NoError(t, err)
	waited = true
	require.NoError(t, cmd.Wait(), "child failed:\n%s\n%s", out.String(), stderr.String())

	assert.Eventually(t, func() bool { return refuses(port) }, 10*time.Second, 100*time.Millisecond,
		"the cluster on port %d outlived its process", port)

	// Nobody removed the directory; the next start does.
	require.DirExists(t, dir)
	cleanupStale(tmp, testLogger(t))
	assert.NoDirExists(t, dir)
}

// lockedBuffer is a strings.Builder safe for one writer and one reader at
// once.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
