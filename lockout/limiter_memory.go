package lockout

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryConfig configures NewMemoryLimiter. Zero values mean the documented
// defaults.
type MemoryConfig struct {
	// Rate is the limit per key (see Rate). Required.
	Rate Rate
	// MaxKeys bounds the number of keys held at once; default 100_000.
	MaxKeys int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// memDefaultMaxKeys is MemoryConfig.MaxKeys when it is zero.
const memDefaultMaxKeys = 100_000

// MemoryLimiter is a Limiter that keeps its state in this process: right
// for a single instance (several instances need RedisLimiter). It is safe
// for concurrent use, never fails (Allow's error is always nil) and starts
// no goroutine, so it needs no Close.
//
// # Memory
//
// A key costs about 24–40 bytes whatever its length: the limiter stores, in
// maps sharded by hash, a 64-bit keyed hash of the key (hash/maphash, with
// a random seed per limiter) and the key's GCRA timestamp. Two keys share a
// budget only when their hashes collide, which among n keys has a chance of
// about n²/2⁶⁵ (3·10⁻¹⁰ at 100,000 keys) and which no outsider can steer,
// since the seed is secret.
//
// The limiter never holds more than MaxKeys keys. A key whose bucket is full
// again is idle: forgetting it changes no decision, and a shard drops its
// idle keys lazily, when a new key arrives after a Period has passed since
// its last sweep or after the shard doubled in size. Only when MaxKeys is
// reached does a new key evict live ones: the idle first, then the keys
// that owe the least (those closest to a full bucket), a sixteenth of the
// shard at a time. So a key that is not idle (throttled or partly
// refilled) is never forgotten below MaxKeys, and a flood of one-off keys
// cannot push out a key that is throttled hard: each flood key owes one
// emission interval, a throttled key more.
//
// Bound, checked by TestMemoryLimiterBoundedUnderIPRotatingFlood: a flood
// of 1,000,000 distinct IP keys against the default MaxKeys of 100,000
// leaves the limiter holding at most 100,000 keys in less than 6 MiB of
// heap (measured: about 3 MiB, 30 bytes per key).
type MemoryLimiter struct {
	now       func() time.Time
	base      time.Time // offsets from base are the limiter's time, in ns
	emission  int64     // ns between events
	tolerance int64     // ns: (Limit−1) emissions, the burst
	period    int64     // ns: a full bucket's refill time (Limit emissions)
	maxKeys   int64
	seed      maphash.Seed
	mask      uint64
	n         atomic.Int64 // keys held, over all shards
	shards    []memShard
}

var _ Peeker = (*MemoryLimiter)(nil)

// memShard is one lock and its map, padded against false sharing.
type memShard struct {
	mu       sync.Mutex
	tat      map[uint64]int64 // key hash → theoretical arrival time (ns offset)
	sweepAt  int64            // sweep idle keys on the next insert at or after this time
	sweepLen int              // … or when the map reaches this length
	deleted  int              // keys deleted since the map was last rebuilt
	_        [24]byte
}

const (
	memMinSweepLen   = 64  // a shard smaller than this is not swept for its size
	memKeysPerShard  = 256 // shards are sized to hold about this many keys at MaxKeys
	memMaxShards     = 256
	memEvictFraction = 16 // at MaxKeys without idle keys, evict 1/16 of a shard
	memMinRebuild    = 64 // a shard's map is rebuilt after max(this, len/4) deletes
)

// NewMemoryLimiter returns a MemoryLimiter. It fails on an invalid Rate or a
// negative MaxKeys with a plain configuration error (no autherr code; it
// would classify as INTERNAL).
func NewMemoryLimiter(cfg MemoryConfig) (*MemoryLimiter, error) {
	emission, tolerance, err := limGCRA(cfg.Rate, time.Nanosecond)
	if err != nil {
		return nil, err
	}
	maxKeys := cfg.MaxKeys
	switch {
	case maxKeys < 0:
		return nil, fmt.Errorf("lockout: memory limiter MaxKeys %d: must not be negative", maxKeys)
	case maxKeys == 0:
		maxKeys = memDefaultMaxKeys
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	// A power of two of shards, each holding about memKeysPerShard keys at
	// MaxKeys (so that sweeps and evictions stay short), at most
	// memMaxShards (plenty for the CPUs to rarely meet on one lock).
	want := min(max(maxKeys/memKeysPerShard, 1), memMaxShards)
	nShards := 1 << (bits.Len(uint(want)) - 1)
	l := &MemoryLimiter{
		now:       now,
		base:      now(),
		emission:  emission,
		tolerance: tolerance,
		period:    emission + tolerance,
		maxKeys:   int64(maxKeys),
		seed:      maphash.MakeSeed(),
		mask:      uint64(nShards - 1), // #nosec G115 -- nShards is a power of two, at least 1
		shards:    make([]memShard, nShards),
	}
	for i := range l.shards {
		l.shards[i].tat = make(map[uint64]int64)
		l.shards[i].sweepLen = memMinSweepLen
	}
	return l, nil
}

// Allow consumes one unit for key (see Limiter and Rate). It never fails:
// err is always nil, so it returns no code; answer a refusal with
// LimitError (RATE_LIMITED). ctx is not used.
func (l *MemoryLimiter) Allow(_ context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	h := maphash.String(l.seed, key)
	idx := h & l.mask
	s := &l.shards[idx]
	for {
		now := int64(l.now().Sub(l.base))
		s.mu.Lock()
		tat, found := s.tat[h]
		if tat < now || !found {
			tat = now
		}
		// Allowed while the arrival time, less the burst, is not in the future.
		if wait := tat - l.tolerance - now; wait > 0 {
			s.mu.Unlock()
			return false, time.Duration(wait), nil
		}
		if found {
			s.tat[h] = tat + l.emission
			s.mu.Unlock()
			return true, 0, nil
		}
		if l.insertLocked(s, h, tat+l.emission, now) {
			s.mu.Unlock()
			return true, 0, nil
		}
		// At MaxKeys with nothing of this shard's own to evict: make room
		// in another shard (never holding two locks) and decide again.
		s.mu.Unlock()
		l.evictElsewhere(idx)
	}
}

// Peek reports what Allow would answer for key now without consuming
// anything (see Peeker). It never fails and stores nothing, so it never
// makes room for a key.
func (l *MemoryLimiter) Peek(_ context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	h := maphash.String(l.seed, key)
	s := &l.shards[h&l.mask]
	now := int64(l.now().Sub(l.base))
	s.mu.Lock()
	tat, found := s.tat[h]
	s.mu.Unlock()
	if !found || tat < now {
		tat = now
	}
	if wait := tat - l.tolerance - now; wait > 0 {
		return false, time.Duration(wait), nil
	}
	return true, 0, nil
}

// Len is the number of keys held, at most MaxKeys.
func (l *MemoryLimiter) Len() int { return int(l.n.Load()) }

// insertLocked stores a new key in s, whose lock is held, making room when
// the limiter is full. It reports false, having stored nothing, when the
// limiter is full and s has nothing left to evict.
func (l *MemoryLimiter) insertLocked(s *memShard, h uint64, tat, now int64) bool {
	if now >= s.sweepAt || len(s.tat) >= s.sweepLen {
		l.sweepLocked(s, now, false)
	}
	for !l.reserve() {
		if l.sweepLocked(s, now, true) == 0 {
			return false
		}
	}
	s.tat[h] = tat
	return true
}

// reserve takes one of the MaxKeys places, reporting false when none is free.
func (l *MemoryLimiter) reserve() bool {
	for {
		n := l.n.Load()
		if n >= l.maxKeys {
			return false
		}
		if l.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// sweepLocked drops the idle keys of s (whose lock is held): those whose
// bucket is full again. With evict, when none is idle, it drops instead
// the keys that owe the least, 1/memEvictFraction of the shard (at least
// one). It returns how many keys it dropped.
func (l *MemoryLimiter) sweepLocked(s *memShard, now int64, evict bool) int {
	before := len(s.tat)
	var live []int64 // with evict: the arrival times of the keys kept
	if evict {
		live = make([]int64, 0, before)
	}
	for h, tat := range s.tat {
		if tat <= now { // the bucket is full again
			delete(s.tat, h)
		} else if evict {
			live = append(live, tat)
		}
	}
	if evict && before > 0 && len(s.tat) == before {
		// Nothing idle: drop the k smallest arrival times (the keys that
		// owe the least), exactly k even when many are equal.
		k := max(before/memEvictFraction, 1)
		slices.Sort(live)
		cut := live[k-1]
		first, _ := slices.BinarySearch(live, cut)
		atCut := k - first // how many keys with tat == cut to drop
		for h, tat := range s.tat {
			switch {
			case tat < cut:
				delete(s.tat, h)
			case tat == cut && atCut > 0:
				delete(s.tat, h)
				atCut--
			}
		}
	}
	dropped := before - len(s.tat)
	l.n.Add(-int64(dropped))
	s.sweepAt = now + l.period
	s.sweepLen = max(2*len(s.tat), memMinSweepLen)
	// A Go map keeps its buckets after deletes, and under churn (delete
	// one key, insert another) it grows instead of reusing the deleted
	// slots: measured, to about 4× its fresh size. Rebuilding it after a
	// quarter of its length was deleted keeps it near its fresh size (about
	// 24 bytes per key) and hands a drained flood's memory back to the heap,
	// for at most four copies per delete.
	s.deleted += dropped
	if s.deleted >= max(len(s.tat)/4, memMinRebuild) {
		m := make(map[uint64]int64, len(s.tat))
		for h, tat := range s.tat {
			m[h] = tat
		}
		s.tat = m
		s.deleted = 0
	}
	return dropped
}

// evictElsewhere makes room in the first shard after shard own that has
// keys; no lock is held.
func (l *MemoryLimiter) evictElsewhere(own uint64) {
	for i := uint64(1); i < uint64(len(l.shards)); i++ {
		s := &l.shards[(own+i)&l.mask]
		s.mu.Lock()
		if len(s.tat) == 0 {
			s.mu.Unlock()
			continue
		}
		dropped := l.sweepLocked(s, int64(l.now().Sub(l.base)), true)
		s.mu.Unlock()
		if dropped > 0 {
			return
		}
	}
	// Every other shard was empty: places were freed meanwhile; the caller
	// decides again.
	runtime.Gosched()
}
