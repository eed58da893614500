//go:build unix

package password

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHasherDummyVerifyTiming checks that DummyVerify costs what a Verify
// of a wrong password costs, with the default parameters: the processor
// time of 20 interleaved runs of each within 30 %, wall-time medians
// logged. Processor time, because on a shared machine (and under -race)
// wall time grows by several times whenever other processes take the
// cores, in bursts that skew even a median; the process's processor time
// counts only the work done. Both paths run the same code, so a real
// difference would be a whole argon2id computation (100 %), not a few
// percent. One slot, so both paths compute in the same working memory. The
// login handler's enumeration test measures the end to end answer times.
func TestHasherDummyVerifyTiming(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{MaxConcurrent: 1})
	phc, err := h.Hash(t.Context(), "the real password")
	require.NoError(t, err)

	const runs = 20
	var verify, dummy []time.Duration
	var verifyCPU, dummyCPU time.Duration
	for range runs {
		start, cpu := time.Now(), pwCPUTime(t)
		ok, _, err := h.Verify(t.Context(), "a wrong password", phc)
		verify = append(verify, time.Since(start))
		verifyCPU += pwCPUTime(t) - cpu
		require.NoError(t, err)
		require.False(t, ok)

		start, cpu = time.Now(), pwCPUTime(t)
		require.NoError(t, h.DummyVerify(t.Context(), "a wrong password"))
		dummy = append(dummy, time.Since(start))
		dummyCPU += pwCPUTime(t) - cpu
	}
	ratio := float64(dummyCPU) / float64(verifyCPU)
	t.Logf("processor time Verify %v, DummyVerify %v (ratio %.2f); wall-time medians %v, %v",
		verifyCPU/runs, dummyCPU/runs, ratio, pwMedian(verify), pwMedian(dummy))
	assert.InDelta(t, 1.0, ratio, 0.30, "DummyVerify %v vs Verify %v of processor time per call", dummyCPU/runs, verifyCPU/runs)
}

// pwCPUTime is the processor time the process has used (user and system).
func pwCPUTime(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
