package apikey_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/apikey"
	"github.com/mana-how/mana-auth/internal/authtest"
)

var bg = context.Background()

// keyForms are the spellings of a key that must never be stored: the key,
// the 32 random bytes it encodes, and both in hex and base64.
func keyForms(t testing.TB, key string) []string {
	t.Helper()
	require.True(t, apikey.WellFormed(key), key)
	n, ok := new(big.Int).SetString(key[len(apikey.Prefix):], 62)
	require.True(t, ok, key)
	raw := n.FillBytes(make([]byte, 32))
	forms := []string{key, key[len(apikey.Prefix):]}
	for _, b := range [][]byte{[]byte(key), raw} {
		forms = append(forms, hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b),
			base64.RawStdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b))
	}
	return forms
}

// TestCreateShowsTheKeyOnceAndStoresOnlyItsHash searches every column of
// every row of auth.api_keys for the key in every spelling. Storing the
// key (or its bytes) in any column fails it; the positive control — the
// SHA-256 is found by the same search — shows the search reads the row.
func TestCreateShowsTheKeyOnceAndStoresOnlyItsHash(t *testing.T) {
	t.Parallel()
	g := newFixture(t, options{serviceKey: serviceKey})
	alice := g.user(t, "alice@example.test")
	exp := g.Clock.Now().Add(48 * time.Hour).Truncate(time.Second)
	st, out, _ := g.Call(t, "POST", prefix, map[string]any{"name": "  ci deploys ", "scopes": []string{"deploy:write", "read", "deploy:write"},
		"expiresAt": exp.Format(time.RFC3339)}, alice.auth)
	require.Equal(t, http.StatusCreated, st, "%v", out)
	key := out["key"].(string)
	require.Len(t, key, apikey.KeyLen)
	require.True(t, strings.HasPrefix(key, "sk_live_"))
	ak := out["apiKey"].(map[string]any)
	assert.ElementsMatch(t, []string{"id", "name", "prefix", "scopes", "createdAt", "expiresAt", "lastUsedAt"}, authtest.Keys(ak))
	assert.Equal(t, "ci deploys", ak["name"])
	assert.Equal(t, key[:12], ak["prefix"])
	assert.Equal(t, []any{"deploy:write", "read"}, ak["scopes"], "repeats dropped, first order kept")
	assert.Equal(t, exp.UTC().Format(time.RFC3339), ak["expiresAt"])
	assert.Nil(t, ak["lastUsedAt"])

	// Two keys never share their secret part (256 random bits each).
	g.Clock.Advance(time.Second)
	other, _ := g.create(t, alice, map[string]any{"name": "other"})
	assert.NotEqual(t, key[12:], other[12:])

	var rows []string
	r, err := g.DB.Owner.Query(bg, `SELECT row_to_json(k)::text FROM auth.api_keys k`)
	require.NoError(t, err)
	for r.Next() {
		var s string
		require.NoError(t, r.Scan(&s))
		rows = append(rows, strings.ToLower(s))
	}
	require.NoError(t, r.Err())
	require.Len(t, rows, 2)
	all := strings.Join(rows, "\n")
	for _, k := range []string{key, other} {
		for _, f := range keyForms(t, k) {
			assert.NotContains(t, all, strings.ToLower(f), "a form of the key is stored")
		}
		sum := sha256.Sum256([]byte(k))
		assert.Contains(t, all, hex.EncodeToString(sum[:]), "positive control: the key's SHA-256 is what is stored")
	}

	// The list never shows it.
	st, body, resp := g.Call(t, "GET", prefix, nil, alice.auth)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	list := body["apiKeys"].([]any)
	require.Len(t, list, 2)
	assert.Equal(t, "other", list[0].(map[string]any)["name"], "newest first")
	raw, err := jsonText(body)
	require.NoError(t, err)
	for _, k := range []string{key, other} {
		for _, f := range keyForms(t, k) {
			assert.NotContains(t, raw, f)
		}
	}

	// The event is written with the key, without it.
	assert.Equal(t, 2, g.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'API_KEY_CREATED' AND user_id = $1
		AND metadata->>'prefix' IS NOT NULL AND metadata::text NOT LIKE '%' || $2 || '%'`, alice.ID, key[12:]))
}

func TestCreateRefusesBadInput(t *testing.T) {
	t.Parallel()
	g := newFixture(t, options{})
	u := g.user(t, "bad@example.test")
	many := make([]string, 33)
	for i := range many {
		many[i] = "s" + strings.Repeat("x", i)
	}
	past := g.Clock.Now().Add(-time.Second).Format(time.RFC3339)
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		fields []string
	}{
		{"no name", map[string]any{"scopes": []string{}}, 400, "VALIDATION_FAILED", []string{"name"}},
		{"blank name", map[string]any{"name": "   "}, 400, "VALIDATION_FAILED", []string{"name"}},
		{"name with a line break", map[string]any{"name": "a\nb"}, 400, "VALIDATION_FAILED", []string{"name"}},
		{"long name", map[string]any{"name": strings.Repeat("n", 101)}, 400, "VALIDATION_FAILED", []string{"name"}},
		{"upper-case scope", map[string]any{"name": "k", "scopes": []string{"Read"}}, 400, "VALIDATION_FAILED", []string{"scopes"}},
		{"empty scope", map[string]any{"name": "k", "scopes": []string{""}}, 400, "VALIDATION_FAILED", []string{"scopes"}},
		{"long scope", map[string]any{"name": "k", "scopes": []string{"a" + strings.Repeat("b", 64)}}, 400, "VALIDATION_FAILED", []string{"scopes"}},
		{"33 scopes", map[string]any{"name": "k", "scopes": many}, 400, "VALIDATION_FAILED", []string{"scopes"}},
		{"past expiry", map[string]any{"name": "k", "expiresAt": past}, 400, "VALIDATION_FAILED", []string{"expiresAt"}},
		{"malformed expiry", map[string]any{"name": "k", "expiresAt": "tomorrow"}, 400, "VALIDATION_FAILED", []string{"expiresAt"}},
		{"everything at once", map[string]any{"name": "", "scopes": []string{"X"}, "expiresAt": past}, 400, "VALIDATION_FAILED",
			[]string{"name", "scopes", "expiresAt"}},
		{"scopes not an array", map[string]any{"name": "k", "scopes": "read"}, 400, "BAD_REQUEST", nil},
		{"a string, not an object", "{", 400, "BAD_REQUEST", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := g.Call(t, "POST", prefix, tc.body, u.auth)
			authtest.RequireError(t, st, body, tc.status, tc.code)
			if tc.fields != nil {
				assert.ElementsMatch(t, tc.fields, authtest.Keys(authtest.ErrFields(body)), "%v", body)
			}
		})
	}
	// 32 distinct scopes are fine, and so are repeats beyond them.
	_, _ = g.create(t, u, map[string]any{"name": "k", "scopes": append(many[:32:32], many[0], many[1])})
	assert.Equal(t, 1, g.OwnerInt(t, `SELECT count(*) FROM auth.api_keys WHERE user_id = $1`, u.ID))
	// Without a token nothing is reached.
	st, body, resp := g.Call(t, "POST", prefix, map[string]any{"name": "k"}, nil)
	authtest.RequireError(t, st, body, 401, "UNAUTHORIZED")
	assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
}

func TestValidateNeedsTheServiceKey(t *testing.T) {
	t.Parallel()
	g := newFixture(t, options{serviceKey: serviceKey})
	u := g.user(t, "svc@example.test")
	key, _ := g.create(t, u, map[string]any{"name": "k"})
	body := map[string]any{"key": key}
	for name, hdr := range map[string]map[string]string{
		"no credential":       nil,
		"empty credential":    {apikey.ServiceKeyHeader: ""},
		"wrong credential":    {apikey.ServiceKeyHeader: serviceKey[:len(serviceKey)-1] + "X"},
		"a prefix of it":      {apikey.ServiceKeyHeader: serviceKey[:10]},
		"the user's bearer":   u.auth,
		"the key as the cred": {apikey.ServiceKeyHeader: key},
	} {
		st, out, _ := g.Call(t, "POST", prefix+"/validate", body, hdr)
		authtest.RequireError(t, st, out, 401, "UNAUTHORIZED")
		assert.NotContains(t, out, "valid", name)
	}
	// Two credentials are refused even when one is right.
	req, err := http.NewRequest("POST", g.Srv.URL+prefix+"/validate", strings.NewReader(`{"key":"`+key+`"}`))
	require.NoError(t, err)
	req.Header.Add(apikey.ServiceKeyHeader, serviceKey)
	req.Header.Add(apikey.ServiceKeyHeader, "other")
	resp, err := g.Srv.Client().Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	out := g.validate(t, key, "")
	assert.Equal(t, map[string]any{"valid": true, "userId": u.ID.String(), "scopes": []any{}}, out)

	// A server without a service key answers 503, whatever is sent.
	off := g.peer(t, options{})
	st, out2, resp2 := off.Call(t, "POST", prefix+"/validate", body, map[string]string{apikey.ServiceKeyHeader: serviceKey})
	authtest.RequireError(t, st, out2, 503, "SERVICE_UNAVAILABLE")
	assert.NotEmpty(t, resp2.Header.Get("Retry-After"))
}

// TestValidateReasons walks a key through its states; each answer is
// checked exactly, so a reason that leaks more (a user id on a refusal)
// or says less fails it.
func TestValidateReasons(t *testing.T) {
	t.Parallel()
	g := newFixture(t, options{serviceKey: serviceKey})
	u := g.user(t, "reasons@example.test")
	exp := g.Clock.Now().Add(time.Hour)
	key, id := g.create(t, u, map[string]any{"name": "k", "scopes": []string{"read", "deploy:write"}, "expiresAt": exp.Format(time.RFC3339Nano)})
	valid := map[string]any{"valid": true, "userId": u.ID.String(), "scopes": []any{"read", "deploy:write"}}
	refused := func(reason string) map[string]any { return map[string]any{"valid": false, "reason": reason} }

	assert.Equal(t, valid, g.validate(t, key, ""))
	assert.Equal(t, valid, g.validate(t, key, "read"), "scope present")
	assert.Equal(t, refused("scope"), g.validate(t, key, "admin"), "scope absent")
	assert.Equal(t, refused("unknown"), g.validate(t, authtest.FlipLast(key), ""), "a key of the right shape that names nothing")
	for _, bad := range []string{"sk_live_short", "pk_live_" + key[8:], key + "0", strings.ToUpper(key), " " + key, key[:50] + "-"} {
		assert.Equal(t, refused("unknown"), g.validate(t, bad, ""), "malformed %q", bad)
	}
	st, out, _ := g.Call(t, "POST", prefix+"/validate", map[string]any{"key": key, "scope": "Not A Scope"},
		map[string]string{apikey.ServiceKeyHeader: serviceKey})
	authtest.RequireError(t, st, out, 400, "VALIDATION_FAILED")
	assert.Contains(t, authtest.ErrFields(out), "scope")
	st, out, _ = g.Call(t, "POST", prefix+"/validate", map[string]any{}, map[string]string{apikey.ServiceKeyHeader: serviceKey})
	authtest.RequireError(t, st, out, 400, "VALIDATION_FAILED")

	// Expiry is checked on every call, cached or not.
	g.Clock.Advance(time.Hour)
	assert.Equal(t, refused("expired"), g.validate(t, key, ""))
	assert.Equal(t, refused("expired"), g.validate(t, key, "read"), "expiry before scope")

	// Revoking: this instance refuses the key at once, though its answer
	// was cached a moment ago.
	g.reauth(t, &u)
	key2, id2 := g.create(t, u, map[string]any{"name": "k2"})
	assert.Equal(t, true, g.validate(t, key2, "")["valid"])
	st, out, _ = g.Call(t, "DELETE", prefix+"/"+id2, nil, u.auth)
	require.Equal(t, http.StatusNoContent, st, "%v", out)
	assert.Equal(t, refused("revoked"), g.validate(t, key2, ""))
	// Revoked wins over expired, and revoking again changes nothing.
	st, _, _ = g.Call(t, "DELETE", prefix+"/"+id, nil, u.auth)
	require.Equal(t, http.StatusNoContent, st)
	assert.Equal(t, refused("revoked"), g.validate(t, key, ""))
	st, _, _ = g.Call(t, "DELETE", prefix+"/"+id, nil, u.auth)
	require.Equal(t, http.StatusNoContent, st)
	assert.Equal(t, 2, g.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'API_KEY_REVOKED' AND user_id = $1`, u.ID),
		"one event per revoke that changed something")
	// Revoked keys are not listed; their rows stay.
	_, body, _ := g.Call(t, "GET", prefix, nil, u.auth)
	assert.Empty(t, body["apiKeys"])
	assert.Equal(t, 2, g.OwnerInt(t, `SELECT count(*) FROM auth.api_keys WHERE user_id = $1 AND revoked_at IS NOT NULL`, u.ID))
}

// TestAnotherUsersKeyIsNotFound: bob can neither see nor revoke alice's
// key, and his attempt changes nothing.
func TestAnotherUsersKeyIsNotFound(t *testing.T) {
	t.Parallel()
	g := newFixture(t, options{serviceKey: serviceKey})
	alice, bob := g.user(t, "alice@example.test"), g.user(t, "bob@example.test")
	key, id := g.create(t, alice, map[string]any{"name": "alice's"})
	for _, path := range []string{"/" + id, "/" + uuid.NewString(), "/not-a-uuid", "/" + strings.ToUpper(id), "/validate"} {
		st, body, _ := g.Call(t, "DELETE", prefix+path, nil, bob.auth)
		authtest.RequireError(t, st, body, 404, "NOT_FOUND")
	}
	_, body, _ := g.Call(t, "GET", prefix, nil, bob.auth)
	assert.Empty(t, body["apiKeys"])
	assert.Equal(t, true, g.validate(t, key, "")["valid"])
	assert.Zero(t, g.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'API_KEY_REVOKED'`))
}

// TestAtMostFiftyLiveKeys: the 51st is 409, also when 60 are asked for at
// once (without the user row's lock, parallel creates pass the count
// together). Revoked and expired keys do not count.
func TestAtMostFiftyLiveKeys(t *testing.T) {
	t.Parallel()
	g := newFixture(t, options{})
	u := g.user(t, "cap@example.test")
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		refused []map[string]any
	)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, body, err := g.Try(bg, "POST", prefix, map[string]any{"name": "k" + string(rune('a'+i%26))}, u.auth)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				refused = append(refused, map[string]any{"err": err.Error()})
			case st == http.StatusCreated:
				created++
			default:
				refused = append(refused, body)
			}
		}()
	}
	close(start)
	wg.Wait()
	require.Equal(t, 50, created)
	require.Len(t, refused, 10)
	for _, body := range refused {
		assert.Equal(t, "CONFLICT", authtest.ErrCode(body), "%v", body)
		assert.Equal(t, "key_limit", authtest.ErrDetails(body)["reason"], "%v", body)
	}
	assert.Equal(t, 50, g.OwnerInt(t, `SELECT count(*) FROM auth.api_keys WHERE user_id = $1`, u.ID))

	st, body, _ := g.Call(t, "POST", prefix, map[string]any{"name": "51st"}, u.auth)
	authtest.RequireError(t, st, body, 409, "CONFLICT")
	_, list, _ := g.Call(t, "GET", prefix, nil, u.auth)
	first := list["apiKeys"].([]any)[0].(map[string]any)["id"].(string)
	st, _, _ = g.Call(t, "DELETE", prefix+"/"+first, nil, u.auth)
	require.Equal(t, http.StatusNoContent, st)
	g.create(t, u, map[string]any{"name": "after a revoke"})

	// An expiring key counts until it expires.
	g.Call(t, "DELETE", prefix+"/"+list["apiKeys"].([]any)[1].(map[string]any)["id"].(string), nil, u.auth)
	g.create(t, u, map[string]any{"name": "short", "expiresAt": g.Clock.Now().Add(time.Minute).Format(time.RFC3339Nano)})
	st, body, _ = g.Call(t, "POST", prefix, map[string]any{"name": "one too many"}, u.auth)
	authtest.RequireError(t, st, body, 409, "CONFLICT")
	g.Clock.Advance(time.Minute)
	g.reauth(t, &u)
	g.create(t, u, map[string]any{"name": "once the short one expired"})
}

// TestLastUsedIsWrittenAtMostOncePerInterval counts, with a trigger in
// the test's own database, the UPDATEs that change last_used_at. A write
// per validation would count 1,000 after the first burst; no write at all
// would leave last_used_at NULL.
func TestLastUsedIsWrittenAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	g := newFixture(t, options{serviceKey: serviceKey})
	writes := lastUsedWrites(t, g)
	u := g.user(t, "used@example.test")
	key, id := g.create(t, u, map[string]any{"name": "busy", "scopes": []string{"read"}})

	burst := func() time.Time {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 50 {
					v, err := g.svc.Validate(bg, key, "read")
					assert.NoError(t, err)
					assert.True(t, v.Valid)
				}
			}()
		}
		close(start)
		wg.Wait()
		return g.Clock.Now()
	}

	last := burst()
	assert.Zero(t, writes(), "1,000 validations, no write yet")
	assert.Nil(t, g.storedLastUsed(t, id))
	_, body, _ := g.Call(t, "GET", prefix, nil, u.auth)
	assert.Equal(t, last.UTC().Format(time.RFC3339Nano), body["apiKeys"].([]any)[0].(map[string]any)["lastUsedAt"],
		"the list shows the use this instance holds in memory")
	require.NoError(t, g.svc.Flush(bg))
	assert.Equal(t, 1, writes(), "1,000 validations, one write")
	require.NotNil(t, g.storedLastUsed(t, id))
	assert.True(t, last.Equal(*g.storedLastUsed(t, id)))
	require.NoError(t, g.svc.Flush(bg))
	assert.Equal(t, 1, writes(), "nothing new, nothing written")

	g.Clock.Advance(time.Minute)
	last = burst()
	require.NoError(t, g.svc.Flush(bg))
	assert.Equal(t, 2, writes())
	assert.True(t, last.Equal(*g.storedLastUsed(t, id)))

	// An older use (another instance wrote a later one) never moves it back.
	p := g.peer(t, options{serviceKey: serviceKey})
	_, err := p.svc.Validate(bg, key, "")
	require.NoError(t, err)
	g.Clock.Advance(time.Second)
	_, err = g.svc.Validate(bg, key, "")
	require.NoError(t, err)
	require.NoError(t, g.svc.Flush(bg))
	newest := *g.storedLastUsed(t, id)
	require.NoError(t, p.svc.Flush(bg))
	assert.True(t, newest.Equal(*g.storedLastUsed(t, id)))
	assert.Equal(t, 3, writes())
}

// TestTheFlushLoopWritesOncePerInterval runs the real loop with a short
// interval: however many validations, the writes stay within one per
// elapsed interval (plus the final one of Close).
func TestTheFlushLoopWritesOncePerInterval(t *testing.T) {
	t.Parallel()
	const interval = 100 * time.Millisecond
	g := newFixture(t, options{serviceKey: serviceKey, cfg: apikey.Config{LastUsedInterval: interval}})
	writes := lastUsedWrites(t, g)
	u := g.user(t, "loop@example.test")
	key, id := g.create(t, u, map[string]any{"name": "loop"})
	start := time.Now()
	n := 0
	for time.Since(start) < 6*interval {
		g.Clock.Advance(time.Millisecond)
		_, err := g.svc.Validate(bg, key, "")
		require.NoError(t, err)
		n++
	}
	elapsed := time.Since(start)
	require.Eventually(t, func() bool { return g.storedLastUsed(t, id) != nil }, 5*time.Second, 10*time.Millisecond,
		"the loop writes without being asked")
	require.NoError(t, g.svc.Close())
	got := writes()
	assert.LessOrEqual(t, got, int(elapsed/interval)+2, "%d validations in %v", n, elapsed)
	assert.Less(t, got, n)
	assert.True(t, g.Clock.Now().Equal(*g.storedLastUsed(t, id)), "Close writes the last use")
}

// TestAccountDeletionRemovesTheKeys: the rows go with the account in its
// transaction, and this instance stops accepting the keys at once
// although it had just cached them (without EraseData's invalidation the
// cached answer stays valid for CacheTTL).
func TestAccountDeletionRemovesTheKeys(t *testing.T) {
	t.Parallel()
	g := newFixture(t, options{serviceKey: serviceKey})
	u := g.user(t, "gone@example.test")
	key, _ := g.create(t, u, map[string]any{"name": "a"})
	g.create(t, u, map[string]any{"name": "b"})
	assert.Equal(t, true, g.validate(t, key, "")["valid"])
	st, body, _ := g.Call(t, "DELETE", authtest.AuthPrefix+"/account", map[string]any{"password": authtest.StrongPassword}, u.auth)
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	assert.Zero(t, g.OwnerInt(t, `SELECT count(*) FROM auth.api_keys`))
	assert.Equal(t, map[string]any{"valid": false, "reason": "unknown"}, g.validate(t, key, ""))
}

// TestOtherInstancesSeeARevokeWithinTheCacheTime documents the cache's
// promise across instances: the instance that revokes refuses at once,
// another one within CacheTTL.
func TestOtherInstancesSeeARevokeWithinTheCacheTime(t *testing.T) {
	t.Parallel()
	g := newFixture(t, options{serviceKey: serviceKey})
	other := g.peer(t, options{serviceKey: serviceKey})
	u := g.user(t, "two@example.test")
	key, id := g.create(t, u, map[string]any{"name": "k"})
	assert.Equal(t, true, other.validate(t, key, "")["valid"])
	st, _, _ := g.Call(t, "DELETE", prefix+"/"+id, nil, u.auth)
	require.Equal(t, http.StatusNoContent, st)
	assert.Equal(t, "revoked", g.validate(t, key, "")["reason"])
	assert.Equal(t, true, other.validate(t, key, "")["valid"], "cached on the other instance")
	g.Clock.Advance(5 * time.Second)
	assert.Equal(t, "revoked", other.validate(t, key, "")["reason"], "within the cache time")

	// Without a cache every validation reads the row.
	nocache := g.peer(t, options{serviceKey: serviceKey, cfg: apikey.Config{CacheTTL: -1}})
	assert.Equal(t, "revoked", nocache.validate(t, key, "")["reason"])
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
