package apikey

import (
	"sync"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
)

// entry is what a lookup by hash found: a key (revoked or not), or
// nothing (found false). Entries are never changed once stored.
type entry struct {
	found     bool
	id        uuid.UUID
	userID    uuid.UUID
	scopes    []string
	expiresAt *time.Time
	revoked   bool
	until     time.Time // cached until then
}

// cache holds recent lookups for ttl: keys that exist in one LRU, hashes
// that match no key in another, so that a flood of made-up keys cannot
// push the real ones out. A revoke on this instance removes its key at
// once (invalidate); the epoch keeps a lookup that raced with it from
// storing what it read before the revoke committed.
type cache struct {
	ttl      time.Duration
	pos, neg *lru.Cache[[32]byte, entry]
	mu       sync.Mutex // orders stores against invalidations
	epoch    uint64
}

func newCache(ttl time.Duration, size int) (*cache, error) {
	c := &cache{ttl: ttl}
	if ttl <= 0 {
		return c, nil
	}
	var err error
	if c.pos, err = lru.New[[32]byte, entry](size); err != nil {
		return nil, err
	}
	if c.neg, err = lru.New[[32]byte, entry](size); err != nil {
		return nil, err
	}
	return c, nil
}

// get returns the cached entry of h, if one is fresh at now.
func (c *cache) get(h [32]byte, now time.Time) (entry, bool) {
	if c.pos == nil {
		return entry{}, false
	}
	e, ok := c.pos.Get(h)
	if !ok {
		e, ok = c.neg.Get(h)
	}
	if !ok || !now.Before(e.until) {
		return entry{}, false
	}
	return e, true
}

// begin returns the epoch a lookup starts in, to pass to put.
func (c *cache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// put stores e for h until now+ttl, unless an invalidation happened since
// the lookup began (it may have read the row before a revoke committed).
func (c *cache) put(h [32]byte, e entry, now time.Time, epoch uint64) {
	if c.pos == nil {
		return
	}
	e.until = now.Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if e.found {
		c.pos.Add(h, e)
	} else {
		c.neg.Add(h, e)
	}
}

// invalidate forgets the given hashes and makes lookups in flight not
// store what they read.
func (c *cache) invalidate(hashes ...[32]byte) {
	if c.pos == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, h := range hashes {
		c.pos.Remove(h)
		c.neg.Remove(h)
	}
}
