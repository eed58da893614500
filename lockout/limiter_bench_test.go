package lockout_test

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mana-how/mana-auth/lockout"
)

// limBenchKeys returns n distinct IP keys ("ip:" + 4 bytes).
func limBenchKeys(n int) []string {
	keys := make([]string, n)
	buf := []byte("ip:....")
	for i := range keys {
		binary.BigEndian.PutUint32(buf[3:], uint32(i)*2654435761)
		keys[i] = string(buf)
	}
	return keys
}

// limBenchParallel runs Allow from GOMAXPROCS goroutines, each walking keys
// from its own offset, and reports the share of events allowed.
func limBenchParallel(b *testing.B, l lockout.Limiter, keys []string) {
	b.Helper()
	var worker, allowed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)) * 7919
		n := int64(0)
		for pb.Next() {
			i++
			ok, _, err := l.Allow(context.Background(), keys[i%len(keys)])
			if err != nil {
				b.Errorf("Allow: %v", err)
				return
			}
			if ok {
				n++
			}
		}
		allowed.Add(n)
	})
	b.ReportMetric(float64(allowed.Load())/float64(b.N), "allowed/op")
}

func BenchmarkMemoryLimiterAllow(b *testing.B) {
	// 100,000 keys at 100 per second: the steady state of a busy server.
	b.Run("keys=100k", func(b *testing.B) {
		l := newMemLimiter(b, lockout.MemoryConfig{Rate: lockout.Rate{Limit: 100, Period: time.Second}})
		limBenchParallel(b, l, limBenchKeys(100_000))
	})
	// 1,000,000 keys through MaxKeys = 100,000 with a slow refill: most
	// events are a new key that must evict (an IP-rotating flood).
	b.Run("flood=1M,maxKeys=100k", func(b *testing.B) {
		l := newMemLimiter(b, lockout.MemoryConfig{Rate: lockout.Rate{Limit: 300, Period: time.Minute}})
		limBenchParallel(b, l, limBenchKeys(1_000_000))
	})
}

func BenchmarkRedisLimiterAllow(b *testing.B) {
	c := redisTestClient(b)
	prefix := redisTestPrefix(b, c)
	l := newRedisLimiter(b, c, prefix, lockout.Rate{Limit: 100, Period: time.Second})
	keys := limBenchKeys(10_000)
	// One round trip at a time: the latency a request pays.
	b.Run("serial", func(b *testing.B) {
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			if _, _, err := l.Allow(context.Background(), keys[i%len(keys)]); err != nil {
				b.Fatalf("Allow: %v", err)
			}
		}
	})
	// Many at once over the client's pool: the throughput of one instance.
	b.Run("parallel", func(b *testing.B) {
		limBenchParallel(b, l, keys)
	})
}
