package localpg

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
)

// canPassDirFD: /proc/self/fd/N names an open directory without checking
// its ancestors (see dataRef).
const canPassDirFD = true

// startTied starts cmd so that it dies with this process even when Close
// is never called: the kernel sends it SIGINT (PostgreSQL's fast shutdown)
// when the thread that forked it exits (PR_SET_PDEATHSIG). That is the
// thread, not the process (golang/go#27505), so cmd is started from a
// goroutine locked to its thread which stays in cmd.Wait until the child
// has exited; the thread ends only then (a goroutine that exits locked
// takes its thread with it) or when the whole process does.
func startTied(cmd *exec.Cmd) (*serverProc, error) {
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	p := &serverProc{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// isPostgres reports whether pid runs the postgres executable, so that a
// postmaster.pid naming a recycled pid is recognised as stale.
func isPostgres(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return true // cannot tell: assume it is
	}
	return string(bytes.TrimSpace(comm)) == "postgres"
}
