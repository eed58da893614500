package apikey

import (
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// lastUsed coalesces the uses of keys in memory until the next Flush: per
// key only the latest time is kept, so any number of validations between
// two flushes costs one UPDATE of that key.
type lastUsed struct {
	mu      sync.Mutex
	pending map[uuid.UUID]time.Time
	max     int
	dropped prometheus.Counter
}

func newLastUsed(max int, dropped prometheus.Counter) *lastUsed {
	return &lastUsed{pending: map[uuid.UUID]time.Time{}, max: max, dropped: dropped}
}

// touch records a use of key id at at.
func (l *lastUsed) touch(id uuid.UUID, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, ok := l.pending[id]
	switch {
	case ok && !at.After(prev):
	case ok || len(l.pending) < l.max:
		l.pending[id] = at
	default:
		l.dropped.Inc()
	}
}

// take empties the pending uses and returns them.
func (l *lastUsed) take() ([]uuid.UUID, []time.Time) {
	l.mu.Lock()
	p := l.pending
	if len(p) == 0 {
		l.mu.Unlock()
		return nil, nil
	}
	// The map taken is read only here from now on: touch writes to the
	// new one.
	l.pending = make(map[uuid.UUID]time.Time, len(p))
	l.mu.Unlock()
	ids := make([]uuid.UUID, 0, len(p))
	times := make([]time.Time, 0, len(p))
	for id, at := range p {
		ids = append(ids, id)
		times = append(times, at)
	}
	return ids, times
}

// restore puts back uses whose write failed, unless a later use of the
// same key arrived meanwhile.
func (l *lastUsed) restore(ids []uuid.UUID, times []time.Time) {
	for i, id := range ids {
		l.touch(id, times[i])
	}
}

// pendingAt returns the use of id not written yet, if any.
func (l *lastUsed) pendingAt(id uuid.UUID) *time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, ok := l.pending[id]; ok {
		return &at
	}
	return nil
}
