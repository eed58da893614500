package passkey_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	vw "github.com/descope/virtualwebauthn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
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
	forged.cred.Key = vw.NewCredential(vw.KeyTypeEC2).Key

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
