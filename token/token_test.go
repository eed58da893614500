package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
)

const (
	tokTestIssuer   = "https://auth.example.test"
	tokTestAudience = "mana"
)

// tokClock is a settable clock for expiry tests.
type tokClock struct {
	mu sync.Mutex
	t  time.Time
}

func tokNewClock() *tokClock {
	return &tokClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *tokClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *tokClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *tokClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tokTestKey is a deterministic signing key: seed bytes all equal to b.
func tokTestKey(tb testing.TB, b byte) SigningKey {
	tb.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
	return SigningKey{ID: tokThumbprint(priv.Public().(ed25519.PublicKey)), Private: priv}
}

func tokPub(k SigningKey) ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// tokNew builds Tokens with the test issuer and audience, signing key 1 and
// the clock; edit adjusts the config.
func tokNew(tb testing.TB, clock *tokClock, edit func(*Config)) *Tokens {
	tb.Helper()
	cfg := Config{
		Issuer:   tokTestIssuer,
		Audience: tokTestAudience,
		Signing:  tokTestKey(tb, 1),
		Now:      clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	tk, err := New(cfg)
	require.NoError(tb, err)
	return tk
}

// tokRequireCode asserts err is an *autherr.Error with the code and no
// claims came back.
func tokRequireCode(tb testing.TB, want autherr.Code, c *Claims, err error, input string) {
	tb.Helper()
	var ae *autherr.Error
	require.ErrorAs(tb, err, &ae, "input %.80q: got claims %+v, want %s", input, c, want)
	require.Equal(tb, want, ae.Code, "input %.80q: got %v", input, err)
	require.Nil(tb, c, "input %.80q: claims returned with an error", input)
	require.Equal(tb, autherr.Classify(err).Code, want, "Classify must keep the code")
}

// tokSegments splits and decodes a compact JWS.
func tokSegments(tb testing.TB, token string) (header, claims map[string]any, sig []byte) {
	tb.Helper()
	parts := strings.Split(token, ".")
	require.Len(tb, parts, 3)
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		require.NoError(tb, err)
		require.NoError(tb, json.Unmarshal(raw, dst))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(tb, err)
	return header, claims, sig
}

// tokValidClaims are the claims Issue would write at now.
func tokValidClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":   tokTestIssuer,
		"sub":   "6f1c2a7e-4b0d-4d43-9a53-3f0c8f7e2b11",
		"aud":   []string{tokTestAudience},
		"exp":   now.Add(15 * time.Minute).Unix(),
		"iat":   now.Unix(),
		"jti":   "0c1d8a8f-8a40-4ad5-9d0e-3d7c2c6c8a11",
		"email": "alice@example.test",
		"sid":   "a3d2b1c0-1111-4222-8333-944455566677",
		"typ":   "access",
	}
}

func tokValidHeader(kid string) map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}
}

func tokB64JSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokSignEd builds a compact JWS by hand (independently of the JWT
// library) and signs it with priv, whatever the header says.
func tokSignEd(tb testing.TB, header, claims map[string]any, priv ed25519.PrivateKey) string {
	tb.Helper()
	input := tokB64JSON(tb, header) + "." + tokB64JSON(tb, claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(input)))
}

func tokWith(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestTokenRoundTrip(t *testing.T) {
	clock := tokNewClock()
	tk := tokNew(t, clock, nil)
	user, session := uuid.New(), uuid.New()

	token, exp, err := tk.Issue(user, "alice@example.test", session)
	require.NoError(t, err)
	assert.Equal(t, clock.Now().Add(15*time.Minute), exp, "default TTL is 15 minutes")

	c, err := tk.Verify(token)
	require.NoError(t, err)
	got, err := c.UserID()
	require.NoError(t, err)
	assert.Equal(t, user, got)
	assert.Equal(t, "alice@example.test", c.Email)
	assert.Equal(t, session.String(), c.SessionID)
	assert.Equal(t, "access", c.Type)
	assert.Equal(t, tokTestIssuer, c.Issuer)
	assert.Equal(t, jwt.ClaimStrings{tokTestAudience}, c.Audience)
	assert.True(t, clock.Now().Equal(c.IssuedAt.Time), "iat %v, want %v", c.IssuedAt, clock.Now())
	assert.True(t, exp.Equal(c.ExpiresAt.Time), "exp claim %v, want %v", c.ExpiresAt, exp)
	_, err = uuid.Parse(c.ID)
	assert.NoError(t, err, "jti is a UUID")

	// The wire form, read without the JWT library.
	header, claims, sig := tokSegments(t, token)
	assert.Equal(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": tokTestKey(t, 1).ID}, header)
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "email", "sid", "typ"} {
		assert.Contains(t, claims, k)
	}
	assert.Equal(t, float64(clock.Now().Add(15*time.Minute).Unix()), claims["exp"])
	input := token[:strings.LastIndexByte(token, '.')]
	assert.True(t, ed25519.Verify(tokPub(tokTestKey(t, 1)), []byte(input), sig), "signature verifies with plain crypto/ed25519")

	// Two tokens for the same session differ (jti).
	token2, _, err := tk.Issue(user, "alice@example.test", session)
	require.NoError(t, err)
	assert.NotEqual(t, token, token2)
}

func TestTokenTTLAndKidConfig(t *testing.T) {
	clock := tokNewClock()
	tk := tokNew(t, clock, func(c *Config) {
		c.TTL = time.Hour
		c.Signing.ID = "2030-01"
	})
	token, exp, err := tk.Issue(uuid.New(), "a@b.test", uuid.New())
	require.NoError(t, err)
	assert.Equal(t, clock.Now().Add(time.Hour), exp)
	header, _, _ := tokSegments(t, token)
	assert.Equal(t, "2030-01", header["kid"])
	_, err = tk.Verify(token)
	require.NoError(t, err)
}

func TestTokenIssueRefusesNilIDs(t *testing.T) {
	tk := tokNew(t, tokNewClock(), nil)
	_, _, err := tk.Issue(uuid.Nil, "a@b.test", uuid.New())
	require.Error(t, err, "nil user id")
	_, _, err = tk.Issue(uuid.New(), "a@b.test", uuid.Nil)
	require.Error(t, err, "nil session id")
	// A token for a 9 KiB email would be refused by Verify; Issue says so.
	_, _, err = tk.Issue(uuid.New(), strings.Repeat("a", 9<<10)+"@b.test", uuid.New())
	require.Error(t, err, "oversized token")
}

// TestTokenRotation: a token signed by the previous key verifies while
// that key is listed in Verify, and stops verifying once it is dropped.
// If Verify ignored cfg.Verify, the first check fails (rotation would log
// everybody out); if it accepted any well-formed Ed25519 signature, the
// last one passes a token from a key we no longer trust.
func TestTokenRotation(t *testing.T) {
	clock := tokNewClock()
	oldKey, newKey := tokTestKey(t, 1), tokTestKey(t, 2)
	oldTokens := tokNew(t, clock, func(c *Config) { c.Signing = oldKey })
	oldToken, _, err := oldTokens.Issue(uuid.New(), "a@b.test", uuid.New())
	require.NoError(t, err)

	rotated := tokNew(t, clock, func(c *Config) {
		c.Signing = newKey
		c.Verify = []VerifyKey{{ID: oldKey.ID, Public: tokPub(oldKey)}}
	})
	_, err = rotated.Verify(oldToken)
	require.NoError(t, err, "old token during rotation")
	newToken, _, err := rotated.Issue(uuid.New(), "a@b.test", uuid.New())
	require.NoError(t, err)
	header, _, _ := tokSegments(t, newToken)
	assert.Equal(t, newKey.ID, header["kid"], "new tokens are signed by the new key")

	// An empty VerifyKey.ID defaults to the thumbprint, which is the kid
	// the old key signed with.
	rotatedNoID := tokNew(t, clock, func(c *Config) {
		c.Signing = newKey
		c.Verify = []VerifyKey{{Public: tokPub(oldKey)}}
	})
	_, err = rotatedNoID.Verify(oldToken)
	require.NoError(t, err)

	done := tokNew(t, clock, func(c *Config) { c.Signing = newKey })
	c, err := done.Verify(oldToken)
	tokRequireCode(t, autherr.TokenInvalid, c, err, oldToken)
	_, err = done.Verify(newToken)
	require.NoError(t, err)
}

// TestTokenHostile feeds Verify forged and malformed tokens; every one must
// answer TOKEN_INVALID with no claims. Each case says which check it
// guards.
func TestTokenHostile(t *testing.T) {
	clock := tokNewClock()
	ours := tokTestKey(t, 1)
	tk := tokNew(t, clock, nil)
	now := clock.Now()
	claims := tokValidClaims(now)
	header := tokValidHeader(ours.ID)
	pub := tokPub(ours)

	// Control: the hand-built token with the valid header and claims
	// verifies, so each case below fails for its one change only.
	control := tokSignEd(t, header, claims, ours.Private)
	_, err := tk.Verify(control)
	require.NoError(t, err, "control token must verify")

	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	libSign := func(method jwt.SigningMethod, hdr map[string]any, key any) string {
		tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
		for k, v := range hdr {
			if k != "alg" {
				tok.Header[k] = v
			}
		}
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		return s
	}
	parts := strings.Split(control, ".")
	flipped := []byte(parts[2])
	if flipped[10] == 'A' {
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}
	mk := func(h, c map[string]any) string { return tokSignEd(t, h, c, ours.Private) }
	expiredWrongAud := tokWith(tokWith(claims, "aud", []string{"other"}), "exp", now.Add(-time.Hour).Unix())

	cases := []struct {
		name  string
		token string
	}{
		// Only EdDSA is accepted, checked twice: by the parser's method
		// list and again in tokKey. If both checks were dropped and the key
		// lookup handed out the key in whatever form the token's alg asks
		// for (the classic mistake: a keyfunc returning []byte(pub) for an
		// HMAC alg), hs256_public_key_as_secret passes a forged token —
		// the public key is published in the JWKS, so anyone could mint
		// one. The same holds for alg none (unsigned) and RS256 (signed
		// with anyone's RSA key); the JWT library's key typing is the third
		// line behind the two checks.
		{"alg_none", libSign(jwt.SigningMethodNone, header, jwt.UnsafeAllowNoneSignatureType)},
		{"alg_none_with_our_signature", tokB64JSON(t, tokWith(header, "alg", "none")) + "." + parts[1] + "." + parts[2]},
		{"hs256_public_key_as_secret", libSign(jwt.SigningMethodHS256, header, []byte(pub))},
		{"hs256_jwks_x_as_secret", libSign(jwt.SigningMethodHS256, header, []byte(base64.RawURLEncoding.EncodeToString(pub)))},
		{"rs256_header", libSign(jwt.SigningMethodRS256, header, rsaKey)},
		{"alg_lowercase_eddsa", mk(tokWith(header, "alg", "eddsa"), claims)},
		{"alg_ed25519", mk(tokWith(header, "alg", "Ed25519"), claims)},
		// If tokKey returned a key for a missing or unknown kid (say, by
		// trying every key or falling back to the signing key), these pass
		// once an attacker holds any key we ever trusted; with a stranger's
		// key they test that the signature is actually checked.
		{"kid_missing", mk(tokWith(header, "kid", nil), claims)},
		{"kid_empty", mk(tokWith(header, "kid", ""), claims)},
		{"kid_unknown", tokSignEd(t, tokWith(header, "kid", "attacker"), claims, stranger)},
		{"kid_unknown_signed_by_us", mk(tokWith(header, "kid", "attacker"), claims)},
		{"kid_not_string", mk(tokWith(header, "kid", 1), claims)},
		{"kid_ours_signed_by_stranger", tokSignEd(t, header, claims, stranger)},
		// If the header allowlist were dropped, a token could point at its
		// own key (jku/jwk/x5u/x5c). These carry a valid signature by our
		// key, so only the allowlist refuses them: a verifier that
		// honoured the embedded key would be forgeable; one that ignores
		// these parameters silently would let a confused downstream
		// verifier be fooled by tokens we accepted.
		{"jku_header", mk(tokWith(header, "jku", "https://evil.test/jwks.json"), claims)},
		{"jwk_header", mk(tokWith(header, "jwk", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(stranger.Public().(ed25519.PublicKey))}), claims)},
		{"jwk_header_stranger_signed", tokSignEd(t, tokWith(header, "jwk", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(stranger.Public().(ed25519.PublicKey))}), claims, stranger)},
		{"x5u_header", mk(tokWith(header, "x5u", "https://evil.test/cert.pem"), claims)},
		{"x5c_header", mk(tokWith(header, "x5c", []string{"MIIB"}), claims)},
		{"crit_header", mk(tokWith(header, "crit", []string{"exp"}), claims)},
		// If the header typ were not checked, a JWT of another kind signed
		// by the same key (an ID token, say) would pass as an access token.
		{"header_typ_missing", mk(tokWith(header, "typ", nil), claims)},
		{"header_typ_jwt", mk(tokWith(header, "typ", "JWT"), claims)},
		// If the signature were not checked over the exact bytes, an
		// edited payload or signature would pass.
		{"signature_bit_flipped", parts[0] + "." + parts[1] + "." + string(flipped)},
		{"payload_swapped", parts[0] + "." + tokB64JSON(t, tokWith(claims, "sub", uuid.NewString())) + "." + parts[2]},
		{"signature_empty", parts[0] + "." + parts[1] + "."},
		{"signature_padded", control + "=="},
		// If strict decoding were dropped, a non-zero padding bit in the
		// last character would decode to the same signature.
		{"signature_dirty_padding_bits", parts[0] + "." + parts[1] + "." + tokDirtyTail(parts[2])},
		// If aud, iss or typ were not enforced, a token minted for another
		// service, by another issuer, or a refresh-type token would pass.
		{"wrong_aud", mk(header, tokWith(claims, "aud", []string{"other-service"}))},
		{"aud_missing", mk(header, tokWith(claims, "aud", nil))},
		{"wrong_iss", mk(header, tokWith(claims, "iss", "https://evil.test"))},
		{"iss_missing", mk(header, tokWith(claims, "iss", nil))},
		{"typ_refresh", mk(header, tokWith(claims, "typ", "refresh"))},
		{"typ_missing", mk(header, tokWith(claims, "typ", nil))},
		// If sub/sid were not parsed as canonical UUIDs, handlers calling
		// UserID would fail later or, worse, match a user by another form.
		{"sub_not_uuid", mk(header, tokWith(claims, "sub", "admin"))},
		{"sub_missing", mk(header, tokWith(claims, "sub", nil))},
		{"sub_nil_uuid", mk(header, tokWith(claims, "sub", uuid.Nil.String()))},
		{"sub_uppercase", mk(header, tokWith(claims, "sub", strings.ToUpper(claims["sub"].(string))))},
		{"sub_urn", mk(header, tokWith(claims, "sub", "urn:uuid:"+claims["sub"].(string)))},
		{"sid_missing", mk(header, tokWith(claims, "sid", nil))},
		{"sid_not_uuid", mk(header, tokWith(claims, "sid", "x"))},
		// If iat/exp were optional, a token without them would never
		// expire; if iat/nbf in the future were accepted, a token minted
		// ahead of time would pass.
		{"exp_missing", mk(header, tokWith(claims, "exp", nil))},
		{"iat_missing", mk(header, tokWith(claims, "iat", nil))},
		{"iat_future", mk(header, tokWith(claims, "iat", now.Add(time.Hour).Unix()))},
		{"nbf_future", mk(header, tokWith(claims, "nbf", now.Add(time.Hour).Unix()))},
		{"exp_string", mk(header, tokWith(claims, "exp", "tomorrow"))},
		// Expired and otherwise wrong is TOKEN_INVALID, not TOKEN_EXPIRED:
		// the client must not be told to refresh a token we never issued.
		{"expired_and_wrong_aud", mk(header, expiredWrongAud)},
		// Junk: must fail fast, without a panic.
		{"empty", ""},
		{"dots_100k", strings.Repeat(".", 100_000)},
		{"one_dot", "."},
		{"two_dots", ".."},
		{"three_garbage_segments", "garbage.more-garbage.!!!"},
		{"four_segments", control + ".x"},
		{"eyJ_stubs", "eyJ.eyJ.eyJ"},
		{"header_not_json", base64.RawURLEncoding.EncodeToString([]byte("{not json")) + "." + parts[1] + "." + parts[2]},
		{"header_json_array", base64.RawURLEncoding.EncodeToString([]byte("[]")) + "." + parts[1] + "." + parts[2]},
		{"claims_json_null", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("null")) + "." + parts[2]},
		{"leading_space", " " + control},
		// If the compact-form check were dropped, these would verify: Go's
		// base64 decoder skips CR and LF, so the signature segment can carry
		// them and still decode to the same signature.
		{"trailing_newline", control + "\n"},
		{"newline_in_signature", control[:len(control)-5] + "\r\n" + control[len(control)-5:]},
		{"std_base64_alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(control) + "+/"},
		{"nul_bytes", "\x00\x00.\x00.\x00"},
		{"invalid_utf8", "\xff\xfe.\xfd.\xfc"},
		// If the 8 KiB limit were dropped, a hostile client could make
		// every request decode up to the header limit of the server.
		{"100k_header", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte(" "), 75_000)) + "." + parts[1] + "." + parts[2]},
		{"oversized_but_signed_by_us", mk(header, tokWith(claims, "pad", strings.Repeat("x", 9<<10)))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := tk.Verify(tc.token)
			tokRequireCode(t, autherr.TokenInvalid, c, err, tc.token)
			assert.Less(t, time.Since(start), 2*time.Second, "hostile input must fail fast")
			// The wire message stays vague; the reason is only in the cause.
			var ae *autherr.Error
			require.ErrorAs(t, err, &ae)
			assert.Empty(t, ae.Message, "the code's generic message is used")
			assert.NotNil(t, ae.Err, "the reason is kept for the logs")
		})
	}
}

// TestTokenJunkIsCheap: the length check runs before any decoding, so a
// megabyte of junk costs no more than a short string. Without it, each
// 100 KB header is base64- and JSON-decoded.
func TestTokenJunkIsCheap(t *testing.T) {
	tk := tokNew(t, tokNewClock(), nil)
	var header strings.Builder
	header.WriteString(`{"alg":"EdDSA"`)
	for i := range 20_000 {
		fmt.Fprintf(&header, `,"h%d":[1,2,3]`, i)
	}
	header.WriteString("}")
	junk := base64.RawURLEncoding.EncodeToString([]byte(header.String())) + ".e30.AA"
	allocs := testing.AllocsPerRun(20, func() {
		_, err := tk.Verify(junk)
		if err == nil {
			t.Fatal("junk verified")
		}
	})
	assert.LessOrEqual(t, allocs, 50.0, "oversized input must be refused before parsing (parsing it costs ~180,000 allocations)")
}

// TestTokenExpiry: exp is enforced with the leeway and reported as
// TOKEN_EXPIRED so clients know to refresh. If exp were not checked the
// last cases pass; if the leeway were ignored, the "inside leeway" case
// fails (clients with a slightly fast clock get spurious 401s).
func TestTokenExpiry(t *testing.T) {
	clock := tokNewClock()
	tk := tokNew(t, clock, nil)
	issued := clock.Now()
	token, exp, err := tk.Issue(uuid.New(), "a@b.test", uuid.New())
	require.NoError(t, err)
	require.Equal(t, issued.Add(15*time.Minute), exp)

	for _, tc := range []struct {
		name string
		at   time.Time
		want autherr.Code // "" means valid
	}{
		{"just_issued", issued, ""},
		{"one_second_before_exp", exp.Add(-time.Second), ""},
		{"at_exp_inside_leeway", exp, ""},
		{"29s_after_exp_inside_leeway", exp.Add(29 * time.Second), ""},
		{"30s_after_exp_leeway_used_up", exp.Add(30 * time.Second), autherr.TokenExpired},
		{"an_hour_after", exp.Add(time.Hour), autherr.TokenExpired},
		// iat 29 s in the future (our clock behind the issuer's): inside
		// leeway; 31 s: refused as invalid, not expired.
		{"clock_29s_behind_issuer", issued.Add(-29 * time.Second), ""},
		{"clock_31s_behind_issuer", issued.Add(-31 * time.Second), autherr.TokenInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock.Set(tc.at)
			c, err := tk.Verify(token)
			if tc.want == "" {
				require.NoError(t, err)
				require.NotNil(t, c)
				return
			}
			tokRequireCode(t, tc.want, c, err, token)
		})
	}

	// A custom leeway is honoured.
	clock.Set(issued)
	strict := tokNew(t, clock, func(c *Config) { c.Leeway = time.Second })
	token, exp, err = strict.Issue(uuid.New(), "a@b.test", uuid.New())
	require.NoError(t, err)
	clock.Set(exp.Add(time.Second))
	c, err := strict.Verify(token)
	tokRequireCode(t, autherr.TokenExpired, c, err, token)
}

// TestTokenAudienceList: a token whose aud lists ours among others
// verifies (RFC 7519 section 4.1.3); a plain string aud too.
func TestTokenAudienceList(t *testing.T) {
	clock := tokNewClock()
	key := tokTestKey(t, 1)
	tk := tokNew(t, clock, nil)
	claims := tokValidClaims(clock.Now())
	for _, aud := range []any{[]string{"x", tokTestAudience}, tokTestAudience} {
		_, err := tk.Verify(tokSignEd(t, tokValidHeader(key.ID), tokWith(claims, "aud", aud), key.Private))
		require.NoError(t, err, "aud %v", aud)
	}
	// The media type form of the header typ (RFC 9068 section 2.1).
	_, err := tk.Verify(tokSignEd(t, tokWith(tokValidHeader(key.ID), "typ", "application/at+jwt"), claims, key.Private))
	require.NoError(t, err)
}

func TestNewTokensConfig(t *testing.T) {
	good := func() Config {
		return Config{Issuer: tokTestIssuer, Audience: tokTestAudience, Signing: tokTestKey(t, 1)}
	}
	key2 := tokTestKey(t, 2)
	broken := tokTestKey(t, 3)
	broken.Private = append(ed25519.PrivateKey(nil), broken.Private...)
	copy(broken.Private[32:], tokPub(key2)) // seed of key 3, public half of key 2

	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no_issuer", func(c *Config) { c.Issuer = "" }},
		{"no_audience", func(c *Config) { c.Audience = "" }},
		{"no_signing_key", func(c *Config) { c.Signing = SigningKey{} }},
		{"short_signing_key", func(c *Config) { c.Signing.Private = c.Signing.Private[:32] }},
		{"inconsistent_signing_key", func(c *Config) { c.Signing = broken }},
		{"negative_ttl", func(c *Config) { c.TTL = -time.Second }},
		{"negative_leeway", func(c *Config) { c.Leeway = -time.Second }},
		{"short_verify_key", func(c *Config) { c.Verify = []VerifyKey{{ID: "v", Public: make([]byte, 31)}} }},
		{"kid_clash", func(c *Config) {
			c.Verify = []VerifyKey{{ID: c.Signing.ID, Public: tokPub(key2)}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.edit(&cfg)
			tk, err := New(cfg)
			require.Error(t, err)
			require.Nil(t, tk)
		})
	}

	t.Run("defaults", func(t *testing.T) {
		cfg := good()
		cfg.Signing.ID = ""
		tk, err := New(cfg)
		require.NoError(t, err)
		assert.Equal(t, 15*time.Minute, tk.ttl)
		assert.Equal(t, 30*time.Second, tk.leeway)
		assert.Equal(t, tokThumbprint(tokPub(cfg.Signing)), tk.signing.ID, "empty kid is the thumbprint")
		assert.NotNil(t, tk.now)
	})
	t.Run("same_key_listed_twice_is_harmless", func(t *testing.T) {
		cfg := good()
		cfg.Verify = []VerifyKey{{ID: cfg.Signing.ID, Public: tokPub(cfg.Signing)}}
		tk, err := New(cfg)
		require.NoError(t, err)
		var set tokJWKS
		require.NoError(t, json.Unmarshal(tk.jwks, &set))
		assert.Len(t, set.Keys, 1)
	})
	t.Run("config_key_is_copied", func(t *testing.T) {
		cfg := good()
		tk, err := New(cfg)
		require.NoError(t, err)
		clear(cfg.Signing.Private) // the caller wipes its copy
		token, _, err := tk.Issue(uuid.New(), "a@b.test", uuid.New())
		require.NoError(t, err)
		_, err = tk.Verify(token)
		require.NoError(t, err)
	})
}

// TestTokenThumbprintRFC8037 checks the kid against the JWK thumbprint
// example of RFC 8037 appendix A.3.
func TestTokenThumbprintRFC8037(t *testing.T) {
	pub, err := hex.DecodeString("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	require.NoError(t, err)
	assert.Equal(t, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", tokThumbprint(pub))
	seed, err := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	require.NoError(t, err)
	k := SigningKey{Private: ed25519.NewKeyFromSeed(seed)}
	assert.Equal(t, ed25519.PublicKey(pub), tokPub(k))
}

// rfc8410Key is the Ed25519 private key example of RFC 8410 section 10.3.
const rfc8410Key = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
`

func TestTokenSigningKeyPEM(t *testing.T) {
	t.Run("rfc8410_example", func(t *testing.T) {
		k, err := ParseSigningKeyPEM([]byte(rfc8410Key))
		require.NoError(t, err)
		seed, err := hex.DecodeString("d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842")
		require.NoError(t, err)
		assert.Equal(t, seed, k.Private.Seed())
		assert.Equal(t, tokThumbprint(tokPub(k)), k.ID)
	})
	t.Run("generate_marshal_parse", func(t *testing.T) {
		k, err := GenerateSigningKey(rand.Reader)
		require.NoError(t, err)
		require.Len(t, k.Private, ed25519.PrivateKeySize)
		assert.Equal(t, tokThumbprint(tokPub(k)), k.ID)
		b, err := k.MarshalPEM()
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----\n")), "got %q", b)
		back, err := ParseSigningKeyPEM(b)
		require.NoError(t, err)
		assert.Equal(t, k, back)
	})
	t.Run("generate_nil_rand", func(t *testing.T) {
		a, err := GenerateSigningKey(nil)
		require.NoError(t, err)
		b, err := GenerateSigningKey(nil)
		require.NoError(t, err)
		assert.NotEqual(t, a.ID, b.ID)
	})
	t.Run("generate_rand_fails", func(t *testing.T) {
		_, err := GenerateSigningKey(bytes.NewReader(make([]byte, 5)))
		require.Error(t, err)
	})
	t.Run("marshal_invalid", func(t *testing.T) {
		_, err := SigningKey{Private: make([]byte, 10)}.MarshalPEM()
		require.Error(t, err)
	})

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaPKCS8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	require.NoError(t, err)
	pemOf := func(typ string, der []byte, headers map[string]string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der, Headers: headers})
	}
	okBlock, _ := pem.Decode([]byte(rfc8410Key))
	require.NotNil(t, okBlock)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not_pem", []byte("MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC")},
		{"rsa_pkcs8", pemOf("PRIVATE KEY", rsaPKCS8, nil)},
		{"rsa_pkcs1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), nil)},
		{"ec_block", pemOf("EC PRIVATE KEY", []byte{0x30, 0}, nil)},
		{"encrypted", pemOf("ENCRYPTED PRIVATE KEY", okBlock.Bytes, nil)},
		{"openssh", pemOf("OPENSSH PRIVATE KEY", okBlock.Bytes, nil)},
		{"public_key", pemOf("PUBLIC KEY", okBlock.Bytes, nil)},
		{"legacy_headers", pemOf("PRIVATE KEY", okBlock.Bytes, map[string]string{"Proc-Type": "4,ENCRYPTED"})},
		{"garbage_der", pemOf("PRIVATE KEY", []byte("not der"), nil)},
		{"two_blocks", append([]byte(rfc8410Key), rfc8410Key...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseSigningKeyPEM(tc.in)
			require.Error(t, err)
			assert.Zero(t, k)
			// Errors never quote key material.
			assert.NotContains(t, err.Error(), "MC4CAQAwBQYDK2Vw")
			assert.NotContains(t, err.Error(), "MIIE")
		})
	}
}

// TestTokenSignAndPublicKey: Sign signs with the current key under its
// kid, and PublicKey finds both current and rotation keys. If PublicKey
// returned its internal slice, a caller could overwrite a trusted key.
func TestTokenSignAndPublicKey(t *testing.T) {
	oldKey := tokTestKey(t, 7)
	tk := tokNew(t, tokNewClock(), func(c *Config) {
		c.Verify = []VerifyKey{{ID: "old", Public: tokPub(oldKey)}}
	})
	msg := []byte("mana-ai-mission-grant/v1|u|m|1700000000|salt|wrapped")
	sig, kid := tk.Sign(msg)
	assert.Equal(t, tokTestKey(t, 1).ID, kid)
	pub, ok := tk.PublicKey(kid)
	require.True(t, ok)
	assert.True(t, ed25519.Verify(pub, msg, sig))
	assert.False(t, ed25519.Verify(pub, append(msg, '!'), sig), "edited message")

	old, ok := tk.PublicKey("old")
	require.True(t, ok)
	assert.Equal(t, tokPub(oldKey), old)
	_, ok = tk.PublicKey("nope")
	assert.False(t, ok)
	_, ok = tk.PublicKey("")
	assert.False(t, ok)

	clear(pub)
	again, _ := tk.PublicKey(kid)
	assert.True(t, ed25519.Verify(again, msg, sig), "the key set must not be reachable through PublicKey")
}

// TestJWKSHandler: the published set parses back to exactly our keys,
// signing key first. If JWKS left out the verify keys, clients would
// reject tokens of the previous key during a rotation.
func TestJWKSHandler(t *testing.T) {
	signing, old := tokTestKey(t, 1), tokTestKey(t, 2)
	tk := tokNew(t, tokNewClock(), func(c *Config) {
		c.Verify = []VerifyKey{{ID: "old-key", Public: tokPub(old)}}
	})
	h := tk.JWKSHandler()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Equal(t, "public, max-age=300", rec.Header().Get("Cache-Control"))

	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &set), "body %s", rec.Body)
	require.Len(t, set.Keys, 2)
	for i, want := range []struct {
		kid string
		pub ed25519.PublicKey
	}{{signing.ID, tokPub(signing)}, {"old-key", tokPub(old)}} {
		k := set.Keys[i]
		assert.Equal(t, map[string]string{"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": want.kid, "x": k["x"]}, k)
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		require.NoError(t, err)
		assert.Equal(t, []byte(want.pub), x, "key %d", i)
	}
	// No private material: the seed's encodings do not occur.
	assert.NotContains(t, rec.Body.String(), base64.RawURLEncoding.EncodeToString(signing.Private.Seed()))
	assert.NotContains(t, rec.Body.String(), `"d"`)

	b, err := tk.JWKS()
	require.NoError(t, err)
	assert.JSONEq(t, rec.Body.String(), string(b))
	b[0] = 'X' // callers get a copy
	b2, _ := tk.JWKS()
	assert.Equal(t, byte('{'), b2[0])

	head := httptest.NewRecorder()
	h.ServeHTTP(head, httptest.NewRequest(http.MethodHead, "/.well-known/jwks.json", nil))
	assert.Equal(t, http.StatusOK, head.Code)
	assert.Zero(t, head.Body.Len())

	post := httptest.NewRecorder()
	h.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/.well-known/jwks.json", nil))
	assert.Equal(t, http.StatusBadRequest, post.Code)
	assert.Equal(t, "GET, HEAD", post.Header().Get("Allow"))
	assert.Contains(t, post.Body.String(), `"code":"BAD_REQUEST"`)
}

// TestJWKSVerifiesIssuedToken: a client that knows only the JWKS (as an
// external service would) verifies our token with the JWT library.
func TestJWKSVerifiesIssuedToken(t *testing.T) {
	clock := tokNewClock()
	tk := tokNew(t, clock, nil)
	token, _, err := tk.Issue(uuid.New(), "a@b.test", uuid.New())
	require.NoError(t, err)
	b, err := tk.JWKS()
	require.NoError(t, err)
	var set tokJWKS
	require.NoError(t, json.Unmarshal(b, &set))

	parsed, err := jwt.Parse(token, func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k.Kid == tok.Header["kid"] {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				return ed25519.PublicKey(x), err
			}
		}
		return nil, errors.New("no key")
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithTimeFunc(clock.Now),
		jwt.WithAudience(tokTestAudience), jwt.WithIssuer(tokTestIssuer))
	require.NoError(t, err)
	assert.True(t, parsed.Valid)
}

func TestClaimsUserID(t *testing.T) {
	id := uuid.New()
	got, err := (&Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: id.String()}}).UserID()
	require.NoError(t, err)
	assert.Equal(t, id, got)
	_, err = (&Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "nope"}}).UserID()
	require.Error(t, err)
	var nilClaims *Claims
	_, err = nilClaims.UserID()
	require.Error(t, err)
}

// TestTokenConcurrentUse: Tokens is shared by every request; under -race
// this fails if Issue or Verify wrote shared state (the parser, the key
// map, the clock).
func TestTokenConcurrentUse(t *testing.T) {
	tk := tokNew(t, tokNewClock(), nil)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			<-start
			for range 20 {
				user := uuid.New()
				token, _, err := tk.Issue(user, "a@b.test", uuid.New())
				if err != nil {
					errs <- err
					return
				}
				c, err := tk.Verify(token)
				if err != nil {
					errs <- err
					return
				}
				if got, _ := c.UserID(); got != user {
					errs <- fmt.Errorf("claims of another token: got %v, want %v", got, user)
					return
				}
				if _, err := tk.Verify(token + "x"); err == nil {
					errs <- errors.New("tampered token verified")
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
