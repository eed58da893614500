package lockout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mana-how/mana-auth/autherr"
)

// RedisConfig configures NewRedisLimiter. Zero values mean the documented
// defaults.
type RedisConfig struct {
	// Client is the Redis connection (a *redis.Client, *redis.ClusterClient
	// or *redis.Ring). Required. Its timeouts bound Allow; the limiter
	// neither configures nor closes it.
	Client redis.UniversalClient
	// Rate is the limit per key (see Rate). Required. Every instance that
	// shares a Prefix must use the same Rate.
	Rate Rate
	// Prefix is prepended to every key; default "mana-auth:rl:". Give each
	// limit (login per IP, passkey options, …) its own prefix.
	Prefix string
}

// redisDefaultPrefix is RedisConfig.Prefix when it is empty.
const redisDefaultPrefix = "mana-auth:rl:"

// redisGCRAScript is one Allow, atomic in Redis: GCRA (see Rate) on the
// Redis server's clock, so instances with skewed clocks agree.
//
// KEYS[1]: the key, holding the theoretical arrival time (TAT) in µs.
// ARGV[1]: the emission interval in µs; ARGV[2]: the burst tolerance in µs.
// Returns {1, 0} when allowed (and stores the new TAT, expiring when the
// bucket is full again), {0, µs until the next unit} when refused (and
// writes nothing).
const redisGCRAScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
	tat = tonumber(stored)
	if not tat then
		return redis.error_reply('mana-auth rate limiter: key holds no arrival time')
	end
	if tat < now then
		tat = now
	end
end
local wait = tat - tolerance - now
if wait > 0 then
	return {0, wait}
end
local new_tat = tat + emission
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
	'PX', string.format('%.0f', math.ceil((new_tat - now) / 1000)))
return {1, 0}
`

// redisPeekScript is one Peek: the decision of redisGCRAScript without its
// write. Same keys and arguments; returns {1, 0} or {0, µs until the next
// unit}.
const redisPeekScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stored = redis.call('GET', KEYS[1])
if not stored then
	return {1, 0}
end
local tat = tonumber(stored)
if not tat then
	return redis.error_reply('mana-auth rate limiter: key holds no arrival time')
end
if tat < now then
	tat = now
end
local wait = tat - tonumber(ARGV[2]) - now
if wait > 0 then
	return {0, wait}
end
return {1, 0}
`

// RedisLimiter is a Limiter that keeps its state in Redis, so that several
// instances sharing one Redis enforce one limit. Each Allow is one round
// trip running one Lua script (EVALSHA, falling back to EVAL), atomic in
// Redis; time is the Redis server's (TIME), not the instance's. A key holds
// one timestamp and expires when its bucket is full again (at most one
// Period after its last allowed event), so idle keys vanish by themselves.
// It needs Redis 5 or later (scripts that replicate their effects) and works
// with Redis Cluster (one key per script).
//
// It fails closed: when Redis cannot answer (down, unreachable, timeout,
// an error reply), Allow returns ok == false and an error that classifies
// as SERVICE_UNAVAILABLE — never "allowed".
type RedisLimiter struct {
	client    redis.UniversalClient
	prefix    string
	emission  int64 // µs
	tolerance int64 // µs
	script    *redis.Script
	peek      *redis.Script
}

var _ Peeker = (*RedisLimiter)(nil)

// NewRedisLimiter returns a RedisLimiter. It fails on a nil Client or an
// invalid Rate with a plain configuration error (no autherr code; it would
// classify as INTERNAL). It does not contact Redis.
func NewRedisLimiter(cfg RedisConfig) (*RedisLimiter, error) {
	if cfg.Client == nil {
		return nil, errors.New("lockout: redis limiter: Client is required")
	}
	emission, tolerance, err := limGCRA(cfg.Rate, time.Microsecond)
	if err != nil {
		return nil, err
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = redisDefaultPrefix
	}
	return &RedisLimiter{
		client:    cfg.Client,
		prefix:    prefix,
		emission:  emission,
		tolerance: tolerance,
		script:    redis.NewScript(redisGCRAScript),
		peek:      redis.NewScript(redisPeekScript),
	}, nil
}

// Allow consumes one unit for key (see Limiter and Rate); answer a refusal
// with LimitError (RATE_LIMITED). Its errors are SERVICE_UNAVAILABLE: Redis
// down or unreachable, a timeout, a cancelled or expired ctx, an error
// reply (such as a key of another type under the prefix); ok is then false.
func (l *RedisLimiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	return l.run(ctx, l.script, key)
}

// Peek reports what Allow would answer for key now without consuming
// anything (see Peeker); one round trip, one read-only script. Its errors
// are Allow's (SERVICE_UNAVAILABLE); ok is false then.
func (l *RedisLimiter) Peek(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	return l.run(ctx, l.peek, key)
}

func (l *RedisLimiter) run(ctx context.Context, script *redis.Script, key string) (ok bool, retryAfter time.Duration, err error) {
	res, err := script.Run(ctx, l.client, []string{l.prefix + key}, l.emission, l.tolerance).Int64Slice()
	if err != nil {
		return false, 0, redisUnavailable(err)
	}
	if len(res) != 2 {
		return false, 0, redisUnavailable(fmt.Errorf("unexpected reply %v", res))
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, max(time.Duration(res[1])*time.Microsecond, time.Microsecond), nil
}

// redisUnavailable is err as the limiter's SERVICE_UNAVAILABLE answer.
func redisUnavailable(err error) error {
	return autherr.Wrap(autherr.ServiceUnavailable, fmt.Errorf("lockout: redis rate limiter: %w", err), "rate limiter unavailable")
}
