package lockout

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/mana-how/mana-auth/autherr"
)

// Limiter decides whether one more event for key is allowed now.
//
// MemoryLimiter keeps the state in the process (one instance);
// RedisLimiter keeps it in Redis, so several instances enforce one limit.
// Both enforce a Rate with the same algorithm (see Rate). A handler turns a
// refusal into 429 RATE_LIMITED with LimitError:
//
//	ok, retry, err := limiter.Allow(ctx, "login-ip:"+ip)
//	if err != nil {
//		return err // 503 SERVICE_UNAVAILABLE: never proceed as if allowed
//	}
//	if !ok {
//		return lockout.LimitError(retry) // 429 RATE_LIMITED, Retry-After
//	}
type Limiter interface {
	// Allow consumes one unit for key. When refused, retryAfter > 0 says
	// when the next unit frees up; a refusal consumes nothing. An error
	// means the limiter could not decide (e.g. Redis down); it classifies
	// through autherr as SERVICE_UNAVAILABLE, ok is false then, and the
	// caller must answer it rather than proceed.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// Peeker is a Limiter that can also tell, without consuming anything,
// whether Allow would allow an event for key now. A cooldown is a limiter
// of Rate{Limit: 1, Period: cooldown} that a request checks with Peek
// before it does its work and that Allow engages when the work failed too
// often (the passkey package's verify failures). MemoryLimiter and
// RedisLimiter implement it.
type Peeker interface {
	Limiter
	// Peek reports what Allow would answer for key now, consuming
	// nothing: ok, or refused with retryAfter > 0. Its errors are those of
	// Allow (SERVICE_UNAVAILABLE), ok is false then.
	Peek(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// Rate is Limit events per Period for one key, enforced with GCRA (the
// generic cell rate algorithm: a token bucket of Limit tokens refilled at
// one token per Period/Limit, kept as a single timestamp per key, the
// "theoretical arrival time"):
//
//   - a key that has been idle for a Period may make Limit events at once,
//     and the Limit+1st is refused;
//   - after that one more event is allowed every Period/Limit (the emission
//     interval), and a refusal says exactly when (retryAfter);
//   - refused events consume nothing: hammering a throttled key does not
//     push its retry time further out;
//   - over any interval of length W a key gets at most
//     Limit + ⌊W / emission interval⌋ events. "Limit per Period" therefore
//     holds exactly as the sustained rate and as the largest burst, while a
//     window of one Period (half-open) that starts on a full bucket can see
//     up to 2·Limit−1 events: the burst, then the refill during the window.
//
// The emission interval is Period/Limit rounded down to the nanosecond
// (MemoryLimiter) or microsecond (RedisLimiter, the resolution of Redis'
// TIME), so a key idle for exactly one Period always has its whole Limit
// back. Limit must be at least 1, Period positive and at most ten years,
// and Period/Limit at least one microsecond.
type Rate struct {
	Limit  int           // events per Period, ≥ 1
	Period time.Duration // > 0
}

// limMaxPeriod bounds Rate.Period, far above any sensible limit, so that
// times stay exact (int64 nanoseconds; microseconds in a Lua double).
const limMaxPeriod = 10 * 365 * 24 * time.Hour

// limGCRA returns the GCRA parameters of r: the emission interval and the
// burst tolerance ((Limit−1) emission intervals), in units of unit.
func limGCRA(r Rate, unit time.Duration) (emission, tolerance int64, err error) {
	if r.Limit < 1 {
		return 0, 0, fmt.Errorf("lockout: rate limit %d: must be at least 1", r.Limit)
	}
	if r.Period <= 0 || r.Period > limMaxPeriod {
		return 0, 0, fmt.Errorf("lockout: rate period %v: must be positive and at most %v", r.Period, limMaxPeriod)
	}
	if r.Period/time.Duration(r.Limit) < time.Microsecond {
		return 0, 0, fmt.Errorf("lockout: rate %d per %v: the interval between events must be at least 1µs", r.Limit, r.Period)
	}
	emission = int64(r.Period / time.Duration(r.Limit) / unit)
	return emission, emission * int64(r.Limit-1), nil
}

// LimitError is the error a handler returns for a refused Allow:
// 429 RATE_LIMITED with RemainingSeconds (and so Retry-After) set to
// retryAfter rounded up to whole seconds, at least 1.
func LimitError(retryAfter time.Duration) *autherr.Error {
	secs := 1
	if retryAfter > time.Second {
		// Ceiling without overflowing near the largest Duration.
		s := retryAfter / time.Second
		if retryAfter%time.Second != 0 {
			s++
		}
		secs = int(min(int64(s), math.MaxInt32))
	}
	return &autherr.Error{Code: autherr.RateLimited, Message: "too many requests", RemainingSeconds: secs}
}
