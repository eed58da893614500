package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mana-how/mana-auth/password"
)

// HashBound is the bare argon2id throughput of this machine: what sign-in
// can reach at most when every core does nothing but hash.
// It is measured before and after the run, and the mean is the bound: on
// a machine shared with other work the two differ, and the difference
// says how far to trust the share reached.
type HashBound struct {
	Cores      int     `json:"cores"`
	HashMs     float64 `json:"hashMs"`          // wall time of one verification with every core busy (from the mean)
	PerSecond  float64 `json:"perSecond"`       // cores ÷ hash time: the mean of before and after
	Before     float64 `json:"beforePerSecond"` // measured before the run
	After      float64 `json:"afterPerSecond"`  // measured after it
	ReachedPct float64 `json:"reachedPct"`      // successful logins/s of the run ÷ PerSecond
}

// combine sets the bound from the rates measured before and after.
func (b *HashBound) combine(before, after float64) {
	b.Before, b.After = before, after
	b.PerSecond = (before + after) / 2
	b.HashMs = float64(b.Cores) / b.PerSecond * 1000
}

// measureHashBound verifies one password on every core for about d with
// the password package's default parameters — the reference server's
// (password.NewHasher(password.HasherConfig{})) — and returns the rate in
// verifications per second. The server should be idle meanwhile: the
// harness runs it after seeding and before the load, and again after.
func measureHashBound(ctx context.Context, d time.Duration) (float64, error) {
	cores := runtime.GOMAXPROCS(0)
	h, err := password.NewHasher(password.HasherConfig{MaxConcurrent: cores, MaxWait: time.Minute})
	if err != nil {
		return 0, err
	}
	const pw = "loadtest hash-bound password" // #nosec G101 -- hashed to time the hash, never a credential
	phc, err := h.Hash(ctx, pw)
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for range cores {
		wg.Go(func() {
			// At least two verifications per core, so a short d still
			// measures whole hashes on every core.
			for i := 0; i < 2 || time.Now().Before(end); i++ {
				ok, _, err := h.Verify(ctx, pw, phc)
				if err == nil && !ok {
					err = fmt.Errorf("the hash of %q does not verify", pw)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("hash bound: %w", firstErr)
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}
