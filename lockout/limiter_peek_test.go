package lockout_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
)

// peek calls Peek, which must not fail, and checks that its answer is
// shaped like Allow's.
func peek(t testing.TB, l lockout.Peeker, key string) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := l.Peek(context.Background(), key)
	require.NoError(t, err, "Peek(%q)", key)
	if ok {
		require.Zero(t, retry, "Peek(%q) allowed with a retryAfter", key)
	} else {
		require.Positive(t, retry, "Peek(%q) refused without a retryAfter", key)
	}
	return ok, retry
}

// TestMemoryLimiterPeekConsumesNothing: Peek tells what Allow would answer
// and changes nothing. Negative control: a Peek that consumed (an Allow
// under another name) would have used up the three units before the loop of
// Allows, which would then fail at once; one that ignored the stored time
// would answer ok for the exhausted key.
func TestMemoryLimiterPeekConsumesNothing(t *testing.T) {
	clock := newLimClock()
	l := newMemLimiter(t, lockout.MemoryConfig{Rate: lockout.Rate{Limit: 3, Period: time.Minute}, Now: clock.Now})

	for range 10 {
		ok, _ := peek(t, l, "k")
		require.True(t, ok, "a fresh key")
	}
	require.Zero(t, l.Len(), "Peek stored a key")
	for i := range 3 {
		ok, _ := memAllow(t, l, "k")
		require.True(t, ok, "event %d after ten peeks", i+1)
	}
	ok, peekRetry := peek(t, l, "k")
	require.False(t, ok, "the exhausted key")
	ok, allowRetry := memAllow(t, l, "k")
	require.False(t, ok)
	assert.Equal(t, allowRetry, peekRetry, "Peek and Allow agree on the wait")

	clock.Advance(peekRetry)
	ok, _ = peek(t, l, "k")
	assert.True(t, ok, "one unit is back after retryAfter")
}

// TestMemoryLimiterPeekCooldown is the cooldown pattern of the Peeker
// documentation: Rate{1, 5 min}, engaged by one Allow, checked by Peek.
func TestMemoryLimiterPeekCooldown(t *testing.T) {
	clock := newLimClock()
	l := newMemLimiter(t, lockout.MemoryConfig{Rate: lockout.Rate{Limit: 1, Period: 5 * time.Minute}, Now: clock.Now})
	ok, _ := peek(t, l, "cred")
	require.True(t, ok, "not engaged yet")
	ok, _ = memAllow(t, l, "cred")
	require.True(t, ok, "Allow engages the cooldown")
	ok, retry := peek(t, l, "cred")
	require.False(t, ok)
	assert.Equal(t, 5*time.Minute, retry)
	clock.Advance(5*time.Minute - time.Second)
	ok, retry = peek(t, l, "cred")
	require.False(t, ok, "still cooling down a second before the end")
	assert.Equal(t, time.Second, retry)
	clock.Advance(time.Second)
	ok, _ = peek(t, l, "cred")
	assert.True(t, ok, "over after 5 minutes")
}

// TestRedisLimiterPeekConsumesNothing is the Redis variant: the same
// answers as Allow, nothing written (the key does not even appear), and a
// cooldown that holds for its period. Negative control as for memory; a
// peek script that SET the key would fail the Exists check.
func TestRedisLimiterPeekConsumesNothing(t *testing.T) {
	c := redisTestClient(t)
	prefix := redisTestPrefix(t, c)
	ctx := context.Background()
	l := newRedisLimiter(t, c, prefix, lockout.Rate{Limit: 3, Period: time.Minute})

	for range 10 {
		ok, _ := peek(t, l, "k")
		require.True(t, ok, "a fresh key")
	}
	n, err := c.Exists(ctx, prefix+"k").Result()
	require.NoError(t, err)
	require.Zero(t, n, "Peek wrote the key")
	for i := range 3 {
		ok, _ := redisAllow(t, l, "k")
		require.True(t, ok, "event %d after ten peeks", i+1)
	}
	stored, err := c.Get(ctx, prefix+"k").Result()
	require.NoError(t, err)
	ok, peekRetry := peek(t, l, "k")
	require.False(t, ok, "the exhausted key")
	again, err := c.Get(ctx, prefix+"k").Result()
	require.NoError(t, err)
	assert.Equal(t, stored, again, "Peek changed the stored arrival time")
	ok, allowRetry := redisAllow(t, l, "k")
	require.False(t, ok)
	assert.InDelta(t, allowRetry.Seconds(), peekRetry.Seconds(), 1, "Peek and Allow agree on the wait")
	assert.LessOrEqual(t, peekRetry, 20*time.Second, "one emission interval at most")

	cool := newRedisLimiter(t, c, prefix+"cool:", lockout.Rate{Limit: 1, Period: 5 * time.Minute})
	ok, _ = redisAllow(t, cool, "cred")
	require.True(t, ok, "Allow engages the cooldown")
	ok, retry := peek(t, cool, "cred")
	require.False(t, ok)
	assert.Greater(t, retry, 5*time.Minute-10*time.Second)
	assert.LessOrEqual(t, retry, 5*time.Minute)
}

// TestRedisLimiterPeekFailsClosed: Peek on a Redis that cannot answer, or
// on a key that holds no arrival time, is SERVICE_UNAVAILABLE, never
// "allowed".
func TestRedisLimiterPeekFailsClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := ln.Addr().String()
	require.NoError(t, ln.Close())
	dead := newRedisLimiter(t, redisTestDeadClient(t, &redis.Options{Addr: closedAddr}), "x:", lockout.Rate{Limit: 1, Period: time.Minute})
	ok, _, err := dead.Peek(context.Background(), "k")
	require.Error(t, err)
	assert.False(t, ok)
	assert.True(t, autherr.IsUnavailable(err), "Classify(%v) = %s", err, autherr.CodeOf(err))

	live := redisTestClient(t)
	prefix := redisTestPrefix(t, live)
	require.NoError(t, live.Set(context.Background(), prefix+"garbage", "not a time", 0).Err())
	ok, _, err = newRedisLimiter(t, live, prefix, lockout.Rate{Limit: 1, Period: time.Minute}).Peek(context.Background(), "garbage")
	require.Error(t, err)
	assert.False(t, ok)
	assert.True(t, autherr.IsUnavailable(err))
}
