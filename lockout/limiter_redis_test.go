package lockout_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
)

// redisTestClient returns a new client of the test Redis
// (testutil.RedisURL: TEST_REDIS_URL, the one on 127.0.0.1:6379, or one
// the test binary starts), closed at the end of the test.
func redisTestClient(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	require.NoError(t, err)
	c := redis.NewClient(opts)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close redis client: %v", err)
		}
	})
	return c
}

// redisTestPrefix returns a key prefix unique to this test; every key under
// it is deleted when the test ends.
func redisTestPrefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	prefix := "mana-auth-test:rl:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			if err := c.Del(ctx, it.Val()).Err(); err != nil {
				t.Errorf("delete test key %s: %v", it.Val(), err)
			}
		}
		if err := it.Err(); err != nil {
			t.Errorf("scan test keys %s*: %v", prefix, err)
		}
	})
	return prefix
}

func newRedisLimiter(t testing.TB, c redis.UniversalClient, prefix string, rate lockout.Rate) *lockout.RedisLimiter {
	t.Helper()
	l, err := lockout.NewRedisLimiter(lockout.RedisConfig{Client: c, Rate: rate, Prefix: prefix})
	require.NoError(t, err)
	return l
}

// redisAllow calls Allow, which must not fail.
func redisAllow(t testing.TB, l lockout.Limiter, key string) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := l.Allow(context.Background(), key)
	require.NoError(t, err, "Allow(%q)", key)
	if ok {
		require.Zero(t, retry, "Allow(%q) allowed with a retryAfter", key)
	} else {
		require.Positive(t, retry, "Allow(%q) refused without a retryAfter", key)
	}
	return ok, retry
}

func TestRedisLimiterAllowsLimitThenRefuses(t *testing.T) {
	c := redisTestClient(t)
	prefix := redisTestPrefix(t, c)
	rate := lockout.Rate{Limit: 5, Period: time.Minute} // one unit per 12 s
	interval := rate.Period / time.Duration(rate.Limit)
	l := newRedisLimiter(t, c, prefix, rate)
	ctx := context.Background()

	ok, _ := redisAllow(t, l, "ip:192.0.2.1")
	require.True(t, ok)
	ttl, err := c.PTTL(ctx, prefix+"ip:192.0.2.1").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, interval-5*time.Second, "TTL after one event")
	assert.LessOrEqual(t, ttl, interval, "TTL after one event: the bucket is full one interval later")

	for i := 1; i < rate.Limit; i++ {
		ok, _ := redisAllow(t, l, "ip:192.0.2.1")
		require.True(t, ok, "event %d of %d refused", i+1, rate.Limit)
	}
	ok, retry := redisAllow(t, l, "ip:192.0.2.1")
	require.False(t, ok, "event %d allowed", rate.Limit+1)
	assert.Greater(t, retry, interval-5*time.Second, "retryAfter")
	assert.LessOrEqual(t, retry, interval, "retryAfter")

	ttl, err = c.PTTL(ctx, prefix+"ip:192.0.2.1").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, rate.Period-5*time.Second, "TTL after the burst")
	assert.LessOrEqual(t, ttl, rate.Period, "TTL after the burst: never longer than one Period")

	// Refusals write nothing: the stored time and the TTL stay.
	stored, err := c.Get(ctx, prefix+"ip:192.0.2.1").Result()
	require.NoError(t, err)
	for range 20 {
		ok, _ := redisAllow(t, l, "ip:192.0.2.1")
		require.False(t, ok)
	}
	again, err := c.Get(ctx, prefix+"ip:192.0.2.1").Result()
	require.NoError(t, err)
	assert.Equal(t, stored, again, "a refusal changed the stored arrival time")
	ttlAfter, err := c.PTTL(ctx, prefix+"ip:192.0.2.1").Result()
	require.NoError(t, err)
	assert.LessOrEqual(t, ttlAfter, ttl, "a refusal extended the TTL")

	// Keys are independent.
	for i := range rate.Limit {
		ok, _ := redisAllow(t, l, "ip:192.0.2.2")
		require.True(t, ok, "another key: event %d refused", i+1)
	}
}

func TestRedisLimiterKeysExpireAndRefill(t *testing.T) {
	c := redisTestClient(t)
	prefix := redisTestPrefix(t, c)
	rate := lockout.Rate{Limit: 2, Period: time.Second}
	l := newRedisLimiter(t, c, prefix, rate)
	ctx := context.Background()

	for range rate.Limit {
		ok, _ := redisAllow(t, l, "k")
		require.True(t, ok)
	}
	ok, _ := redisAllow(t, l, "k")
	require.False(t, ok)
	ttl, err := c.PTTL(ctx, prefix+"k").Result()
	require.NoError(t, err)
	require.Positive(t, ttl, "the key has no TTL (-1) or is gone (-2)")
	require.LessOrEqual(t, ttl, rate.Period)

	// The bucket is full again after one Period, and the key is gone.
	require.Eventually(t, func() bool {
		n, err := c.Exists(ctx, prefix+"k").Result()
		require.NoError(t, err)
		return n == 0
	}, 5*time.Second, 20*time.Millisecond, "the key outlived its Period")
	for i := range rate.Limit {
		ok, _ := redisAllow(t, l, "k")
		require.True(t, ok, "after refill: event %d refused", i+1)
	}
	ok, _ = redisAllow(t, l, "k")
	require.False(t, ok, "after refill: event %d allowed", rate.Limit+1)
}

// TestRedisLimiterTwoInstancesShareOneLimit: two limiters on two clients (two
// instances of the server) sharing one Redis enforce one limit under a
// burst of 100 goroutines split across both.
//
// Negative control: were Allow two round trips (GET the arrival time, decide
// in Go, SET the new one) instead of one script, goroutines of both
// instances would read the same arrival time before either wrote, all decide
// "allowed", and far more than Limit would pass: the exact count below
// fails (a GET-then-SET variant let all 100 of 100 through in each of five
// rounds). Were each instance to use
// its own clock instead of Redis TIME, skewed clocks would disagree on
// refills; the limiter takes no clock at all.
func TestRedisLimiterTwoInstancesShareOneLimit(t *testing.T) {
	const goroutines, limit, rounds = 100, 10, 5
	a := redisTestClient(t)
	b := redisTestClient(t)
	prefix := redisTestPrefix(t, a)
	rate := lockout.Rate{Limit: limit, Period: time.Hour}
	limiters := []lockout.Limiter{newRedisLimiter(t, a, prefix, rate), newRedisLimiter(t, b, prefix, rate)}

	for round := range rounds {
		key := fmt.Sprintf("login-ip:198.51.100.%d", round)
		var allowed, refused, failed atomic.Int64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range goroutines {
			l := limiters[g%2]
			wg.Go(func() {
				<-start
				ok, retry, err := l.Allow(context.Background(), key)
				switch {
				case err != nil:
					failed.Add(1)
					t.Errorf("Allow: %v", err)
				case ok:
					allowed.Add(1)
				case retry <= 0:
					t.Errorf("refused with retryAfter %v", retry)
				default:
					refused.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		require.Zero(t, failed.Load(), "round %d: errors", round)
		require.Equal(t, int64(limit), allowed.Load(), "round %d: allowed across both instances", round)
		require.Equal(t, int64(goroutines-limit), refused.Load(), "round %d: refused", round)
	}
}

// TestRedisLimiterFailsClosed: whenever Redis cannot answer, Allow says
// "not allowed" with an error that classifies as SERVICE_UNAVAILABLE (503,
// never counted toward the lockout) — never "allowed".
func TestRedisLimiterFailsClosed(t *testing.T) {
	rate := lockout.Rate{Limit: 5, Period: time.Minute}

	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := ln.Addr().String()
	require.NoError(t, ln.Close())

	// A server that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns sync.WaitGroup
	var mu sync.Mutex
	var held []net.Conn
	conns.Go(func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return // closed by the cleanup below
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		require.NoError(t, silent.Close())
		conns.Wait()
		for _, conn := range held {
			assert.NoError(t, conn.Close())
		}
	})

	live := redisTestClient(t)
	prefix := redisTestPrefix(t, live)
	require.NoError(t, live.HSet(context.Background(), prefix+"hash", "f", "v").Err())
	require.NoError(t, live.Set(context.Background(), prefix+"garbage", "not a time", 0).Err())
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	for _, tc := range []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
		ctx    context.Context
		key    string
	}{
		{"connection refused", func(t *testing.T) redis.UniversalClient {
			return redisTestDeadClient(t, &redis.Options{Addr: closedAddr})
		}, context.Background(), "k"},
		{"no answer: timeout", func(t *testing.T) redis.UniversalClient {
			return redisTestDeadClient(t, &redis.Options{Addr: silent.Addr().String(), ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
		}, context.Background(), "k"},
		{"cancelled context", func(*testing.T) redis.UniversalClient { return live }, cancelled, "k"},
		{"error reply: key of the wrong type", func(*testing.T) redis.UniversalClient { return live }, context.Background(), "hash"},
		{"error reply: key holds no time", func(*testing.T) redis.UniversalClient { return live }, context.Background(), "garbage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newRedisLimiter(t, tc.client(t), prefix, rate)
			ok, retry, err := l.Allow(tc.ctx, tc.key)
			require.Error(t, err)
			assert.False(t, ok, "allowed although Redis could not decide")
			assert.Zero(t, retry)
			assert.True(t, autherr.IsUnavailable(err), "Classify(%v) = %s, want SERVICE_UNAVAILABLE", err, autherr.CodeOf(err))
			var ae *autherr.Error
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, autherr.ServiceUnavailable, ae.Code)
			assert.Equal(t, 503, autherr.Classify(err).Status())
			assert.False(t, autherr.CountsTowardLockout(err))
		})
	}
}

// redisTestDeadClient is a client of a Redis that cannot answer: no retries,
// short timeouts.
func redisTestDeadClient(t *testing.T, opts *redis.Options) *redis.Client {
	opts.MaxRetries = -1
	opts.DialTimeout = time.Second
	c := redis.NewClient(opts)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close redis client: %v", err)
		}
	})
	return c
}

// TestRedisLimiterSurvivesAFlushedScriptCache: after a Redis restart (or
// SCRIPT FLUSH) EVALSHA answers NOSCRIPT and Allow falls back to EVAL.
// Flushing the cache only costs other well-behaved clients one EVAL.
func TestRedisLimiterSurvivesAFlushedScriptCache(t *testing.T) {
	c := redisTestClient(t)
	prefix := redisTestPrefix(t, c)
	l := newRedisLimiter(t, c, prefix, lockout.Rate{Limit: 2, Period: time.Hour})
	ok, _ := redisAllow(t, l, "k")
	require.True(t, ok)
	require.NoError(t, c.ScriptFlush(context.Background()).Err())
	ok, _ = redisAllow(t, l, "k")
	require.True(t, ok)
	ok, _ = redisAllow(t, l, "k")
	require.False(t, ok)
}

func TestRedisLimiterConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never contacted
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close redis client: %v", err)
		}
	})
	for _, tc := range []struct {
		name string
		cfg  lockout.RedisConfig
	}{
		{"no client", lockout.RedisConfig{Rate: lockout.Rate{Limit: 1, Period: time.Second}}},
		{"zero limit", lockout.RedisConfig{Client: c, Rate: lockout.Rate{Period: time.Second}}},
		{"zero period", lockout.RedisConfig{Client: c, Rate: lockout.Rate{Limit: 1}}},
		{"interval under 1µs", lockout.RedisConfig{Client: c, Rate: lockout.Rate{Limit: 1001, Period: time.Millisecond}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := lockout.NewRedisLimiter(tc.cfg)
			require.Error(t, err, "config %+v", tc.cfg)
			assert.Nil(t, l)
		})
	}

	// The default prefix.
	live := redisTestClient(t)
	l, err := lockout.NewRedisLimiter(lockout.RedisConfig{Client: live, Rate: lockout.Rate{Limit: 1, Period: time.Second}})
	require.NoError(t, err)
	b := make([]byte, 8)
	_, err = rand.Read(b)
	require.NoError(t, err)
	key := "test-default-prefix-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := live.Del(context.Background(), "mana-auth:rl:"+key).Err(); err != nil {
			t.Errorf("delete test key: %v", err)
		}
	})
	ok, _ := redisAllow(t, l, key)
	require.True(t, ok)
	n, err := live.Exists(context.Background(), "mana-auth:rl:"+key).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "key under the default prefix")
}
