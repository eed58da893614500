//go:build !linux

package testutil

import "os/exec"

// startTied starts cmd and reaps it. Outside Linux there is no parent
// death signal: a child outlives a test binary that dies without running
// its cleanups.
func startTied(cmd *exec.Cmd, p *Process) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return nil
}
