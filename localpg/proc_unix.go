//go:build unix && !linux

package localpg

import "os/exec"

// canPassDirFD: outside Linux a data directory must be reachable by path.
const canPassDirFD = false

// startTied starts cmd and reaps it. Without a parent death signal outside
// Linux, a throwaway cluster whose process exits without Close runs on
// until the next Find removes it (see cleanupStale).
func startTied(cmd *exec.Cmd) (*serverProc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func isPostgres(int) bool { return true }
