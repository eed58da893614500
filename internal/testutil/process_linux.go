package testutil

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startTied starts cmd so that the kernel kills it (SIGKILL) when the
// thread that forked it exits (PR_SET_PDEATHSIG). That is the thread, not
// the process (golang/go#27505), so cmd is started from a goroutine
// locked to its thread, which stays in cmd.Wait until the child has
// exited; the thread ends only then or with the whole process.
func startTied(cmd *exec.Cmd, p *Process) error {
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	return <-started
}
