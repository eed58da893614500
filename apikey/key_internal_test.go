package apikey

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNewKeyEncodesEveryValue: the smallest and largest 32-byte values
// and random ones are 43 base62 characters that decode to the bytes
// drawn, and the hash is the SHA-256 of the whole key. A shorter
// encoding without the padding, or a hash of the bytes instead of the
// key, fails it.
func TestNewKeyEncodesEveryValue(t *testing.T) {
	inputs := [][]byte{bytes.Repeat([]byte{0}, 32), bytes.Repeat([]byte{0xff}, 32), append(bytes.Repeat([]byte{0}, 31), 1)}
	for range 200 {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		require.NoError(t, err)
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		key, hash, err := newKey(bytes.NewReader(in))
		require.NoError(t, err)
		require.True(t, WellFormed(key), key)
		n, ok := new(big.Int).SetString(key[len(Prefix):], 62)
		require.True(t, ok)
		assert.Equal(t, in, n.FillBytes(make([]byte, 32)))
		assert.Equal(t, sha256.Sum256([]byte(key)), hash)
	}
	key, _, err := newKey(bytes.NewReader(make([]byte, 32)))
	require.NoError(t, err)
	assert.Equal(t, Prefix+strings.Repeat("0", KeyChars), key)
	_, _, err = newKey(bytes.NewReader(make([]byte, 31)))
	assert.Error(t, err, "a short read is an error, never a short key")
}

// TestLastUsedTakeRacesWithTouch: flushes (take) while validations
// record uses (touch), under -race. take once kept iterating the live map
// when it found it empty, while touch wrote to it: -race reports that
// within a few thousand rounds.
func TestLastUsedTakeRacesWithTouch(t *testing.T) {
	l := newLastUsed(1<<20, prometheus.NewCounter(prometheus.CounterOpts{Name: "dropped"}))
	var stop atomic.Bool
	done := make(chan int)
	go func() {
		taken := 0
		for !stop.Load() {
			ids, _ := l.take()
			taken += len(ids)
		}
		done <- taken
	}()
	at := time.Now()
	for i := range 20000 {
		l.touch(uuid.New(), at.Add(time.Duration(i)))
		if i%4 == 0 {
			runtime.Gosched()
		}
	}
	stop.Store(true)
	taken := <-done
	ids, _ := l.take()
	assert.Equal(t, 20000, taken+len(ids), "every use is taken once")
}

// TestLastUsedIsBounded: beyond MaxPending keys, uses of new keys are
// dropped and counted; keys already waiting still move forward, never back.
func TestLastUsedIsBounded(t *testing.T) {
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "dropped"})
	l := newLastUsed(2, dropped)
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	t0 := time.Now()
	l.touch(a, t0)
	l.touch(b, t0)
	l.touch(c, t0)
	assert.Equal(t, 1.0, promtest.ToFloat64(dropped))
	l.touch(a, t0.Add(time.Second))
	l.touch(a, t0.Add(-time.Second))
	assert.Equal(t, t0.Add(time.Second), *l.pendingAt(a))
	assert.Nil(t, l.pendingAt(c))
	assert.Equal(t, 1.0, promtest.ToFloat64(dropped))
}
