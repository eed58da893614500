package passkey_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/passkey"
)

// requireLimited checks a 429 RATE_LIMITED answer with its Retry-After.
func requireLimited(t testing.TB, st int, body map[string]any, resp *http.Response) int {
	t.Helper()
	authtest.RequireError(t, st, body, http.StatusTooManyRequests, "RATE_LIMITED")
	secs := int(body["error"].(map[string]any)["remainingSeconds"].(float64))
	assert.Equal(t, strconv.Itoa(secs), resp.Header.Get("Retry-After"))
	return secs
}

// TestOptionsLimitPerIP: 20 options calls a minute per client IP, over
// both options routes; the 21st is 429 with Retry-After, and a unit is
// back after Period/Limit (3 s). Negative control: without the limit the
// 21st answers 200.
func TestOptionsLimitPerIP(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "limit@example.com")
	for i := range passkey.OptionsRate.Limit {
		if i%2 == 0 {
			p.signInOptions(t, "")
		} else {
			p.registerOptions(t, u.access)
		}
	}
	st, body, resp := p.Call(t, "POST", pkPrefix+"/authenticate/options", map[string]any{"email": u.email}, nil)
	assert.Equal(t, 3, requireLimited(t, st, body, resp), "one unit every 3 s")
	st, body, resp = p.Call(t, "POST", pkPrefix+"/register/options", nil, authtest.Bearer(u.access))
	requireLimited(t, st, body, resp)
	assert.Equal(t, passkey.OptionsRate.Limit, p.OwnerInt(t, `SELECT count(*) FROM auth.passkey_challenges`),
		"a refused call stores no challenge")
	p.Clock.Advance(3 * time.Second)
	p.signInOptions(t, "")
}

// TestFailedVerifiesCoolTheCredentialDown: 10 failed verifications of a
// credential within a minute refuse every verification of it for 5
// minutes — the genuine one too, with Retry-After — and after that it
// signs in again. The password lockout is not touched. Negative controls:
// without the cooldown the 11th verification (a valid one) signs in;
// counting the cooldown from the last refusal instead of the 10th
// failure keeps it refused after 5 minutes.
func TestFailedVerifiesCoolTheCredentialDown(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "cool@example.com")
	k := newSoftKey(u.id)
	p.register(t, u.access, k)
	forged := k.clone()
	forged.cred.Key = newCredential().Key

	for i := range passkey.FailureRate.Limit {
		c := p.signInOptions(t, u.email)
		st, body, _ := p.verify(t, c.ChallengeID, forged.get(t, c.Options))
		authtest.RequireError(t, st, body, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")
		_ = i
	}
	c := p.signInOptions(t, u.email)
	st, body, resp := p.verify(t, c.ChallengeID, k.get(t, c.Options))
	assert.Equal(t, 300, requireLimited(t, st, body, resp), "5 minutes")
	assert.False(t, p.spent(t, c.ChallengeID), "a refused verification leaves the challenge")

	p.Clock.Advance(5*time.Minute - time.Second)
	c = p.signInOptions(t, u.email)
	st, body, resp = p.verify(t, c.ChallengeID, k.get(t, c.Options))
	assert.Equal(t, 1, requireLimited(t, st, body, resp), "a second before the end")
	p.Clock.Advance(time.Second)
	p.signIn(t, u.email, k)
	assert.Equal(t, 10, p.OwnerInt(t, `SELECT count(*) FROM auth.login_attempts WHERE email = $1 AND NOT successful`, u.email),
		"the ten failures are recorded; the refusals of the cooldown are not attempts")
	locked, _, err := p.Gate.Status(t.Context(), u.email)
	require.NoError(t, err)
	assert.False(t, locked, "the password lockout is not touched")
	p.Login(t, u.email, authtest.StrongPassword)
}

// TestUnknownCredentialsCountPerIP: verifications with credentials nobody
// registered (or that do not parse) count against the client's IP, and
// the 11th is refused while a registered credential from the same IP is
// not. Negative control: counting unknown credentials per credential id
// (a fresh id each time) never refuses the 11th.
func TestUnknownCredentialsCountPerIP(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "known@example.com")
	k := newSoftKey(u.id)
	p.register(t, u.access, k)

	for i := range passkey.FailureRate.Limit {
		stranger := newSoftKey(u.id) // a fresh credential id each time
		c := p.signInOptions(t, "")
		credential := stranger.get(t, c.Options)
		if i == 0 {
			credential = json.RawMessage(`{"id":"not base64!","type":"public-key"}`)
		}
		st, body, _ := p.verify(t, c.ChallengeID, credential)
		authtest.RequireError(t, st, body, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")
	}
	c := p.signInOptions(t, "")
	st, body, resp := p.verify(t, c.ChallengeID, newSoftKey(u.id).get(t, c.Options))
	requireLimited(t, st, body, resp)
	p.signIn(t, u.email, k) // a registered credential has its own budget
	assert.Zero(t, p.OwnerInt(t, `SELECT count(*) FROM auth.login_attempts WHERE NOT successful`),
		"no account, no attempt row: unknown credentials name nobody")
}

// TestSignInOptionsRevealNoAccount: options for an address with passkeys,
// one without an account and one of an account without passkeys have the
// same shape; the stand-in lists are stable per address (on every
// instance) and differ between addresses. Negative control: answering an
// empty allowCredentials (or an error) for unknown addresses fails the
// shape comparison; a random stand-in fails the stability check.
func TestSignInOptionsRevealNoAccount(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	q := p.peer(t, pkOptions{})
	u := p.user(t, "real@example.com")
	p.register(t, u.access, newSoftKey(u.id))
	p.user(t, "nopasskey@example.com")

	type requestOptions struct {
		PublicKey map[string]json.RawMessage `json:"publicKey"`
	}
	shape := func(email string, f *pkFixture) (keys []string, allow string) {
		c := f.signInOptions(t, email)
		var o requestOptions
		require.NoError(t, json.Unmarshal(c.Options, &o))
		for k := range o.PublicKey {
			keys = append(keys, k)
		}
		return keys, string(o.PublicKey["allowCredentials"])
	}
	realKeys, realAllow := shape(u.email, p)
	require.NotEmpty(t, realAllow)
	for _, email := range []string{"nobody@example.com", "nopasskey@example.com"} {
		keys, allow := shape(email, p)
		assert.ElementsMatch(t, realKeys, keys, "%s: the same fields as for a real account", email)
		var list []map[string]any
		require.NoError(t, json.Unmarshal([]byte(allow), &list), "%s", email)
		require.NotEmpty(t, list, email)
		for _, d := range list {
			assert.Equal(t, "public-key", d["type"])
			id, err := base64.RawURLEncoding.DecodeString(d["id"].(string))
			require.NoError(t, err)
			assert.Contains(t, []int{16, 20, 32, 64}, len(id), "a length real authenticators use")
		}
		_, again := shape(email, p)
		assert.Equal(t, allow, again, "%s: the same list on every call", email)
		_, elsewhere := shape(" "+email, q)
		assert.Equal(t, allow, elsewhere, "%s: the same list on another instance", email)
	}
	_, a := shape("nobody@example.com", p)
	_, b := shape("nobody2@example.com", p)
	assert.NotEqual(t, a, b, "each address its own list")

	st, body, _ := p.Call(t, "POST", pkPrefix+"/authenticate/options", map[string]any{"email": "not an address"}, nil)
	authtest.RequireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
}

// TestLimitsSharedThroughRedis: two instances whose limits live in one
// Redis (as the reference server builds them with REDIS_URL) enforce one
// budget: failures on A and on B add up to one cooldown, seen by both,
// and so do options calls. Negative control: in-memory limiters per
// instance let the eleventh verification through on either.
func TestLimitsSharedThroughRedis(t *testing.T) {
	t.Parallel()
	client := redisClient(t)
	prefix := "mana-auth-test:passkey:" + uuid.NewString() + ":"
	t.Cleanup(func() {
		keys, err := client.Keys(context.Background(), prefix+"*").Result()
		require.NoError(t, err)
		if len(keys) > 0 {
			require.NoError(t, client.Del(context.Background(), keys...).Err())
		}
	})
	limits := func() passkey.Limits {
		mk := func(r lockout.Rate, name string) *lockout.RedisLimiter {
			l, err := lockout.NewRedisLimiter(lockout.RedisConfig{Client: client, Rate: r, Prefix: prefix + name + ":"})
			require.NoError(t, err)
			return l
		}
		return passkey.Limits{Options: mk(passkey.OptionsRate, "options"), Failures: mk(passkey.FailureRate, "failures"),
			Cooldown: mk(passkey.CooldownRate, "cooldown")}
	}
	a := newPkFixture(t, pkOptions{limits: limits()})
	b := a.peer(t, pkOptions{limits: limits()})
	u := a.user(t, "shared@example.com")
	k := newSoftKey(u.id)
	start := time.Now()
	a.register(t, u.access, k)
	forged := k.clone()
	forged.cred.Key = newCredential().Key

	for i := range passkey.FailureRate.Limit {
		f := []*pkFixture{a, b}[i%2]
		c := f.signInOptions(t, u.email)
		st, body, _ := f.verify(t, c.ChallengeID, forged.get(t, c.Options))
		authtest.RequireError(t, st, body, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")
	}
	for _, f := range []*pkFixture{a, b} {
		c := f.signInOptions(t, u.email)
		st, body, resp := f.verify(t, c.ChallengeID, k.get(t, c.Options))
		secs := requireLimited(t, st, body, resp)
		assert.Greater(t, secs, 290, "the 5-minute cooldown")
	}
	// Options, alternating between the instances, until one is refused:
	// with one shared budget that is the 21st call (plus one for every 3 s
	// the test took, as Redis' clock refills it); with a budget per
	// instance it would be the 41st.
	allowed := 1 + passkey.FailureRate.Limit + 2 // options calls so far: registration, failures, the two refusals
	for ; allowed <= 2*passkey.OptionsRate.Limit; allowed++ {
		st, body, resp := []*pkFixture{a, b}[allowed%2].Call(t, "POST", pkPrefix+"/authenticate/options", nil, nil)
		if st != http.StatusOK {
			requireLimited(t, st, body, resp)
			break
		}
	}
	refills := int(time.Since(start) / (time.Minute / time.Duration(passkey.OptionsRate.Limit)))
	assert.LessOrEqual(t, allowed, passkey.OptionsRate.Limit+refills, "the calls allowed before the refusal fit one shared budget")
}

// redisClient is a client of the test Redis (testutil.RedisURL:
// TEST_REDIS_URL, the one on 127.0.0.1:6379, or one the test binary
// starts).
func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	require.NoError(t, err)
	c := redis.NewClient(opts)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	return c
}
