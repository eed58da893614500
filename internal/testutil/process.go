package testutil

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child process a test started with StartProcess: a server
// binary, a PgBouncer. Its standard output and error are kept together in
// memory (Output), and it is killed when the test ends.
type Process struct {
	cmd  *exec.Cmd
	out  *LockedBuffer
	done chan struct{}
	err  error // of Wait; read after done
}

// StartProcess starts cmd with its output captured, and kills it (SIGKILL)
// in t.Cleanup if it still runs then. On Linux it also dies with the test
// binary (a timeout panic runs no cleanup): the kernel sends it SIGKILL
// when the thread that started it exits (see startTied).
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{cmd: cmd, out: &LockedBuffer{}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.out
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if err := startTied(cmd, p); err != nil {
		t.Fatalf("testutil: start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		if p.Exited() {
			return
		}
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Logf("testutil: kill %s: %v", cmd.Path, err)
		}
		<-p.done
	})
	return p
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits at most d for the process to end and returns the error of
// exec.Cmd.Wait; it fails the test when the process is still running
// after d.
func (p *Process) Wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("testutil: %s still running after %v", p.cmd.Path, d)
		return nil
	}
}

// WaitOutput polls the output until it contains s, and fails the test
// when the process exits first or d passes.
func (p *Process) WaitOutput(t testing.TB, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.Output(), s) {
		if p.Exited() {
			t.Fatalf("testutil: %s exited (%v) before writing %q; output:\n%s", p.cmd.Path, p.err, s, p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("testutil: %s did not write %q within %v; output:\n%s", p.cmd.Path, s, d, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LockedBuffer is a bytes.Buffer safe for concurrent writes and reads.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
