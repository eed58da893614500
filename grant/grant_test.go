package grant_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/hkdf"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/grant"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// hkdfIndependent derives the mission key with golang.org/x/crypto/hkdf
// (not the crypto/hkdf the package uses), from the wire format as api.md
// states it.
func hkdfIndependent(t testing.TB, master []byte, saltB64, userID, missionID string) []byte {
	t.Helper()
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	require.NoError(t, err)
	info := "mana-ai-mission-grant/v1|" + userID + "|" + missionID
	out := make([]byte, 32)
	_, err = io.ReadFull(hkdf.New(sha256.New, master, salt, []byte(info)), out)
	require.NoError(t, err)
	return out
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	g := f.issue(t, "mission-42", 0)

	key, err := f.unwrapper.Unwrap(context.Background(), g)
	require.NoError(t, err)
	want := hkdfIndependent(t, f.master, g.Derivation.Salt, f.user.String(), "mission-42")
	assert.Equal(t, want, key, "the unwrapped key is HKDF-SHA256(master, salt, context) recomputed independently")
	assert.NotEqual(t, f.master, key, "the grant carries a derived key, never the master key")

	// Through JSON, as it travels.
	key2, err := f.unwrapper.UnwrapJSON(context.Background(), marshal(t, g))
	require.NoError(t, err)
	assert.Equal(t, want, key2)

	// Each grant has a fresh salt, so a fresh key; another mission another key.
	g2 := f.issue(t, "mission-42", 0)
	assert.NotEqual(t, g.Derivation.Salt, g2.Derivation.Salt)
	k2, err := f.unwrapper.Unwrap(context.Background(), g2)
	require.NoError(t, err)
	assert.NotEqual(t, key, k2)
	assert.Equal(t, hkdfIndependent(t, f.master, g2.Derivation.Salt, f.user.String(), "mission-42"), k2)
}

// TestWireFormatV1 checks every byte of the v1 format with code written
// from api.md, independent of the package's helpers.
func TestWireFormatV1(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	g := f.issue(t, "Weekly review ✓", 2*time.Hour)

	var doc map[string]any
	require.NoError(t, json.Unmarshal(marshal(t, g), &doc))
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, []string{"wrappedKey", "derivation", "issuedAt", "expiresAt", "userId", "missionId",
		"signature", "signatureKid"}, keys)
	ctxStr := "mana-ai-mission-grant/v1|" + f.user.String() + "|Weekly review ✓"
	assert.Equal(t, map[string]any{"kdf": "HKDF-SHA256", "salt": g.Derivation.Salt, "info": ctxStr}, doc["derivation"])
	assert.Equal(t, "2026-03-14T15:09:26Z", doc["issuedAt"])
	assert.Equal(t, "2026-03-14T17:09:26Z", doc["expiresAt"])
	assert.Equal(t, f.user.String(), doc["userId"])
	assert.Equal(t, "Weekly review ✓", doc["missionId"])

	salt, err := base64.StdEncoding.Strict().DecodeString(doc["derivation"].(map[string]any)["salt"].(string))
	require.NoError(t, err, "salt is standard padded base64")
	assert.Len(t, salt, 32)
	wrapped, err := base64.StdEncoding.Strict().DecodeString(doc["wrappedKey"].(string))
	require.NoError(t, err)
	assert.Len(t, wrapped, 256, "a 2048-bit OAEP ciphertext")

	label := ctxStr + "|" + strconv.FormatInt(testNow.Add(2*time.Hour).Unix(), 10)
	assert.Equal(t, label, grant.Label(f.user.String(), "Weekly review ✓", g.ExpiresAt))
	mdk, err := rsa.DecryptOAEP(sha256.New(), nil, f.priv, wrapped, []byte(label))
	require.NoError(t, err, "RSA-OAEP SHA-256/MGF1-SHA-256 with the v1 label")
	assert.Equal(t, hkdfIndependent(t, f.master, doc["derivation"].(map[string]any)["salt"].(string), f.user.String(), "Weekly review ✓"), mdk)

	sig, err := base64.StdEncoding.Strict().DecodeString(doc["signature"].(string))
	require.NoError(t, err)
	msg := label + "|" + doc["derivation"].(map[string]any)["salt"].(string) + "|" + doc["wrappedKey"].(string)
	pub, ok := f.tokens.PublicKey(doc["signatureKid"].(string))
	require.True(t, ok, "signatureKid is a kid of the server's key set")
	assert.True(t, ed25519.Verify(pub, []byte(msg), sig), "signature over label|salt|wrappedKey by the token-signing key")
	assert.Equal(t, grant.Thumbprint(pub), doc["signatureKid"], "the kid of a default signing key is its thumbprint")
	assert.Contains(t, string(mustJWKS(t, f)), `"kid":"`+g.SignatureKID+`"`, "the JWKS publishes the kid")
}

func mustJWKS(t testing.TB, f *fixture) []byte {
	t.Helper()
	b, err := f.tokens.JWKS()
	require.NoError(t, err)
	return b
}

// TestTamperingIsRejected edits each field of an authentic grant; every
// edit is refused wrap-rejected (never a key, never expired or malformed).
func TestTamperingIsRejected(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	other := uuid.MustParse("9d3b2f6a-1c1e-4a6e-8f6b-3c2d1e0f9a8b")
	flip := func(s string) string { // change one base64 character
		b := []byte(s)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		return string(b)
	}
	cases := []struct {
		name string
		edit func(g *grant.Grant)
	}{
		{"user id", func(g *grant.Grant) { g.UserID = other.String() }},
		{"user id and info together", func(g *grant.Grant) {
			g.UserID = other.String()
			g.Derivation.Info = grant.Context(g.UserID, g.MissionID)
		}},
		{"mission id", func(g *grant.Grant) { g.MissionID = "mission-43" }},
		{"mission id and info together", func(g *grant.Grant) {
			g.MissionID = "mission-43"
			g.Derivation.Info = grant.Context(g.UserID, g.MissionID)
		}},
		{"expiry later", func(g *grant.Grant) { g.ExpiresAt = g.ExpiresAt.Add(24 * time.Hour) }},
		{"expiry earlier", func(g *grant.Grant) { g.ExpiresAt = g.ExpiresAt.Add(-time.Minute) }},
		{"info", func(g *grant.Grant) { g.Derivation.Info += "x" }},
		{"salt", func(g *grant.Grant) { g.Derivation.Salt = flip(g.Derivation.Salt) }},
		{"wrapped key", func(g *grant.Grant) { g.WrappedKey = flip(g.WrappedKey) }},
		{"signature", func(g *grant.Grant) { g.Signature = flip(g.Signature) }},
		{"signature removed", func(g *grant.Grant) { g.Signature = "" }},
		{"signature not base64", func(g *grant.Grant) { g.Signature = "%%%" }},
		{"kid removed", func(g *grant.Grant) { g.SignatureKID = "" }},
		{"kid unknown", func(g *grant.Grant) { g.SignatureKID = "someone-else" }},
		{"kid with control characters", func(g *grant.Grant) { g.SignatureKID = "a\x00b" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := f.issue(t, "mission-42", 0)
			_, err := f.unwrapper.Unwrap(context.Background(), g)
			require.NoError(t, err, "the grant before the edit")
			tc.edit(g)
			key, err := f.unwrapper.Unwrap(context.Background(), g)
			assert.Nil(t, key)
			requireReason(t, err, grant.ReasonWrapRejected, "edit %s", tc.name)
		})
	}
}

// TestGrantMintedWithOnlyThePublicKey: anyone holding the AI service's
// public key can build a well-formed grant for any user and mission with a
// key of their choosing. Without the server's signing key it is refused,
// whatever kid it names.
func TestGrantMintedWithOnlyThePublicKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	real := f.issue(t, "mission-42", 0)

	mint := func(t *testing.T, s grant.Signer) *grant.Grant {
		salt := make([]byte, 32)
		_, err := rand.Read(salt)
		require.NoError(t, err)
		chosen := bytes.Repeat([]byte{0x13}, 32) // the key the forger wants the AI to use
		g := &grant.Grant{Derivation: grant.Derivation{KDF: grant.KDF, Salt: b64(salt),
			Info: grant.Context(f.user.String(), "mission-42")},
			IssuedAt: testNow, ExpiresAt: testNow.Add(time.Hour), UserID: f.user.String(), MissionID: "mission-42"}
		wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &f.priv.PublicKey, chosen,
			[]byte(grant.Label(g.UserID, g.MissionID, g.ExpiresAt)))
		require.NoError(t, err)
		g.WrappedKey = b64(wrapped)
		resignWith(g, s)
		return g
	}
	forger := seedKey(99)
	cases := []struct {
		name   string
		signer grant.Signer
	}{
		{"own key, own kid", edSigner{forger, grant.Thumbprint(forger.Public().(ed25519.PublicKey))}},
		{"own key, the server's kid", edSigner{forger, real.SignatureKID}},
		{"another token service", newTokens(t, 8)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := mint(t, tc.signer)
			key, err := f.unwrapper.Unwrap(context.Background(), g)
			assert.Nil(t, key)
			requireReason(t, err, grant.ReasonWrapRejected)
		})
	}
	// Negative control: the same forgery signed by the server's key opens,
	// so the refusals above are the signature's doing.
	g := mint(t, f.tokens)
	key, err := f.unwrapper.Unwrap(context.Background(), g)
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{0x13}, 32), key)
}

func TestExpired(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	g := f.issue(t, "mission-42", 0)
	require.Equal(t, testNow.Add(grant.DefaultTTL), g.ExpiresAt)

	f.clock.Set(g.ExpiresAt.Add(-time.Second))
	_, err := f.unwrapper.Unwrap(context.Background(), g)
	require.NoError(t, err, "one second before expiry")

	f.clock.Set(g.ExpiresAt)
	key, err := f.unwrapper.Unwrap(context.Background(), g)
	assert.Nil(t, key)
	requireReason(t, err, grant.ReasonExpired, "at expiresAt")

	f.clock.Add(365 * 24 * time.Hour)
	_, err = f.unwrapper.Unwrap(context.Background(), g)
	requireReason(t, err, grant.ReasonExpired)

	// An expired grant whose expiry was pushed out is not authentic.
	g.ExpiresAt = f.clock.Now().Add(time.Hour)
	_, err = f.unwrapper.Unwrap(context.Background(), g)
	requireReason(t, err, grant.ReasonWrapRejected, "an edited expiry")
}

// TestDecryptionFailuresAreOneError: grants that are authentic (signed by
// the server) but do not decrypt — bad base64, truncated or padded
// ciphertext, a ciphertext for another key, random bytes, an unwrapper
// holding the wrong key — all give the identical error.
func TestDecryptionFailuresAreOneError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	otherPriv := privateKey(t, "rsa2048-other.pem")
	cases := []struct {
		name string
		edit func(g *grant.Grant)
		u    func() *grant.Unwrapper
	}{
		{"wrapped key not base64", func(g *grant.Grant) { g.WrappedKey = "not*base64" }, nil},
		{"wrapped key base64 without padding", func(g *grant.Grant) { g.WrappedKey = strings.TrimRight(g.WrappedKey, "=") + "A" }, nil},
		{"truncated ciphertext", func(g *grant.Grant) {
			ct, _ := base64.StdEncoding.DecodeString(g.WrappedKey)
			g.WrappedKey = b64(ct[:len(ct)-1])
		}, nil},
		{"lengthened ciphertext", func(g *grant.Grant) {
			ct, _ := base64.StdEncoding.DecodeString(g.WrappedKey)
			g.WrappedKey = b64(append(ct, 0))
		}, nil},
		{"random ciphertext", func(g *grant.Grant) {
			ct := make([]byte, 256)
			_, _ = rand.Read(ct)
			ct[0] = 0 // below the modulus
			g.WrappedKey = b64(ct)
		}, nil},
		{"ciphertext for another key", func(g *grant.Grant) {
			ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &otherPriv.PublicKey, make([]byte, 32),
				[]byte(grant.Label(g.UserID, g.MissionID, g.ExpiresAt)))
			require.NoError(t, err)
			g.WrappedKey = b64(ct)
		}, nil},
		{"ciphertext with another label", func(g *grant.Grant) {
			ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &f.priv.PublicKey, make([]byte, 32), []byte("other"))
			require.NoError(t, err)
			g.WrappedKey = b64(ct)
		}, nil},
		{"wrapped 31 bytes", func(g *grant.Grant) {
			ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &f.priv.PublicKey, make([]byte, 31),
				[]byte(grant.Label(g.UserID, g.MissionID, g.ExpiresAt)))
			require.NoError(t, err)
			g.WrappedKey = b64(ct)
		}, nil},
		{"salt not base64", func(g *grant.Grant) { g.Derivation.Salt = "###" }, nil},
		{"salt of 16 bytes", func(g *grant.Grant) { g.Derivation.Salt = b64(make([]byte, 16)) }, nil},
		{"unwrapper holds the wrong key", func(*grant.Grant) {}, func() *grant.Unwrapper { return f.newUnwrapper(t, otherPriv, nil) }},
	}
	var errs []error
	for _, tc := range cases {
		g := f.issue(t, "mission-42", 0)
		tc.edit(g)
		f.resign(g)
		u := f.unwrapper
		if tc.u != nil {
			u = tc.u()
		}
		key, err := u.Unwrap(context.Background(), g)
		assert.Nil(t, key, tc.name)
		requireReason(t, err, grant.ReasonWrapRejected, tc.name)
		errs = append(errs, err)
	}
	for i, err := range errs[1:] {
		assert.Equal(t, errs[0], err, "%s gives another error than %s", cases[i+1].name, cases[0].name)
		assert.Equal(t, errs[0].Error(), err.Error())
	}
	assert.True(t, errors.Is(errs[0], &grant.Failure{Reason: grant.ReasonWrapRejected}))
	assert.False(t, errors.Is(errs[0], &grant.Failure{Reason: grant.ReasonExpired}))
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	valid := marshal(t, f.issue(t, "mission-42", 0))
	set := func(field string, v any) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(valid, &m))
		if v == nil {
			delete(m, field)
		} else {
			m[field] = v
		}
		return marshal(t, m)
	}
	cases := map[string][]byte{
		"empty":                   nil,
		"not JSON":                []byte("grant"),
		"null":                    []byte("null"),
		"array":                   []byte("[]"),
		"empty object":            []byte("{}"),
		"bad time":                set("expiresAt", "tomorrow"),
		"no expiry":               set("expiresAt", nil),
		"no issuedAt":             set("issuedAt", nil),
		"number as user":          set("userId", 7),
		"user not a UUID":         set("userId", "alice"),
		"user UUID in upper case": set("userId", strings.ToUpper(f.user.String())),
		"nil UUID":                set("userId", uuid.Nil.String()),
		"no mission":              set("missionId", nil),
		"mission with |":          set("missionId", "a|b"),
		"no wrapped key":          set("wrappedKey", nil),
		"kdf":                     set("derivation", map[string]any{"kdf": "HKDF-SHA512", "salt": "AAAA", "info": "x"}),
		"no derivation":           set("derivation", nil),
		"too long":                append(bytes.Repeat([]byte(" "), grant.MaxGrantJSON), valid...),
	}
	for name, in := range cases {
		key, err := f.unwrapper.UnwrapJSON(context.Background(), in)
		assert.Nil(t, key, name)
		requireReason(t, err, grant.ReasonMalformed, name)
	}
	_, err := f.unwrapper.Unwrap(context.Background(), nil)
	requireReason(t, err, grant.ReasonMalformed, "nil grant")
	// Negative control: the document the cases start from unwraps.
	_, err = f.unwrapper.UnwrapJSON(context.Background(), valid)
	require.NoError(t, err)
}

func TestNotConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	g := f.issue(t, "mission-42", 0)

	u, err := grant.NewUnwrapper(grant.UnwrapperConfig{})
	require.NoError(t, err)
	assert.False(t, u.Configured())
	for name, in := range map[string][]byte{"valid": marshal(t, g), "garbage": []byte("x"), "empty": nil} {
		key, err := u.UnwrapJSON(context.Background(), in)
		assert.Nil(t, key)
		requireReason(t, err, grant.ReasonNotConfigured, name)
	}
	_, err = u.Unwrap(context.Background(), g)
	requireReason(t, err, grant.ReasonNotConfigured)

	iss, err := grant.NewIssuer(grant.IssuerConfig{Keys: f.keys, Signer: f.tokens})
	require.NoError(t, err)
	assert.False(t, iss.Configured())
	calls := f.keys.calls
	_, err = iss.Issue(context.Background(), grant.Request{UserID: f.user, MissionID: "m"})
	require.Equal(t, autherr.GrantNotConfigured, autherr.Classify(err).Code)
	assert.Equal(t, 503, autherr.Classify(err).Status())
	_, err = iss.Issue(context.Background(), grant.Request{UserID: f.user, MissionID: ""})
	require.Equal(t, autherr.GrantNotConfigured, autherr.Classify(err).Code, "checked before anything else")
	assert.Equal(t, calls, f.keys.calls, "no master key was read")
}

func TestIssueRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	zkUser, noVault := uuid.New(), uuid.New()
	f.keys.zk[zkUser] = true
	cases := []struct {
		name    string
		req     grant.Request
		code    autherr.Code
		details bool
	}{
		{"zero knowledge", grant.Request{UserID: zkUser, MissionID: "m"}, autherr.ZKActive, false},
		{"no vault", grant.Request{UserID: noVault, MissionID: "m"}, autherr.VaultNotFound, false},
		{"nil user", grant.Request{MissionID: "m"}, autherr.Unauthorized, false},
		{"empty mission", grant.Request{UserID: f.user}, autherr.ValidationFailed, true},
		{"mission with |", grant.Request{UserID: f.user, MissionID: "a|b"}, autherr.ValidationFailed, true},
		{"mission of 201 characters", grant.Request{UserID: f.user, MissionID: strings.Repeat("é", 201)}, autherr.ValidationFailed, true},
		{"mission with NUL", grant.Request{UserID: f.user, MissionID: "a\x00"}, autherr.ValidationFailed, true},
		{"mission not UTF-8", grant.Request{UserID: f.user, MissionID: "a\xff"}, autherr.ValidationFailed, true},
	}
	for _, tc := range cases {
		g, err := f.issuer.Issue(context.Background(), tc.req)
		assert.Nil(t, g, tc.name)
		e := autherr.Classify(err)
		require.NotNil(t, e, tc.name)
		assert.Equal(t, tc.code, e.Code, tc.name)
		if tc.details {
			assert.Contains(t, e.Details["fields"], "missionId", tc.name)
		}
	}
	assert.Empty(t, f.events.events, "no event for a refused grant")
	// 200 characters is the limit, inclusive.
	_, err := f.issuer.Issue(context.Background(), grant.Request{UserID: f.user, MissionID: strings.Repeat("é", 200)})
	require.NoError(t, err)

	// A key source in trouble is infrastructure, never the user's fault.
	f.keys.err = errors.Join(errors.New("vault down"), context.DeadlineExceeded)
	_, err = f.issuer.Issue(context.Background(), grant.Request{UserID: f.user, MissionID: "m"})
	assert.Equal(t, autherr.ServiceUnavailable, autherr.Classify(err).Code)
}

func TestTTLClamps(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	cases := []struct {
		ttl, want time.Duration
	}{
		{0, 24 * time.Hour},
		{time.Nanosecond, time.Hour},
		{-time.Hour, time.Hour},
		{59 * time.Minute, time.Hour},
		{time.Hour, time.Hour},
		{90*time.Minute + 500*time.Millisecond, 90 * time.Minute},
		{30 * 24 * time.Hour, 30 * 24 * time.Hour},
		{30*24*time.Hour + time.Second, 30 * 24 * time.Hour},
		{365 * 24 * time.Hour, 30 * 24 * time.Hour},
		{time.Duration(1<<63 - 1), 30 * 24 * time.Hour},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, grant.ClampTTL(tc.ttl), "ClampTTL(%v)", tc.ttl)
		g := f.issue(t, "m", tc.ttl)
		assert.Equal(t, tc.want, g.ExpiresAt.Sub(g.IssuedAt), "Issue with TTL %v", tc.ttl)
		assert.Equal(t, testNow, g.IssuedAt)
	}
	// A clock with sub-second precision still gives whole seconds.
	f.clock.Set(testNow.Add(700 * time.Millisecond))
	g := f.issue(t, "m", 0)
	assert.Equal(t, testNow, g.IssuedAt)
	assert.Equal(t, testNow.Add(24*time.Hour), g.ExpiresAt)
}

func TestGrantIssuedEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	g := f.issue(t, "mission-42", 3*time.Hour)
	require.Len(t, f.events.events, 1)
	e := f.events.events[0]
	assert.Equal(t, f.user, e.UserID)
	assert.Equal(t, "mission-42", e.MissionID)
	assert.Equal(t, g.ExpiresAt, e.ExpiresAt)
	assert.Equal(t, g.SignatureKID, e.SignatureKID)
	meta := e.Metadata()
	assert.Equal(t, map[string]any{"missionId": "mission-42", "expiresAt": "2026-03-14T18:09:26Z",
		"signatureKid": g.SignatureKID}, meta)
	text := string(marshal(t, meta)) + string(marshal(t, e))
	for name, secret := range map[string]string{"wrapped key": g.WrappedKey, "salt": g.Derivation.Salt,
		"master key": b64(f.master), "signature": g.Signature} {
		assert.NotContains(t, text, secret, "the event holds the %s", name)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	pubPEM := publicPEM(t, &f.priv.PublicKey, "PUBLIC KEY")
	cases := []struct {
		name string
		cfg  grant.IssuerConfig
	}{
		{"no key source", grant.IssuerConfig{Signer: f.tokens}},
		{"no signer", grant.IssuerConfig{Keys: f.keys}},
		{"both key forms", grant.IssuerConfig{Keys: f.keys, Signer: f.tokens, PublicKeyPEM: pubPEM, PublicKey: &f.priv.PublicKey}},
		{"bad PEM", grant.IssuerConfig{Keys: f.keys, Signer: f.tokens, PublicKeyPEM: []byte("nope")}},
		{"1024 bits", grant.IssuerConfig{Keys: f.keys, Signer: f.tokens, PublicKeyPEM: readPEM(t, "rsa1024.pem")}},
	}
	for _, tc := range cases {
		_, err := grant.NewIssuer(tc.cfg)
		assert.Error(t, err, tc.name)
	}
	_, err := grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKey: f.priv})
	assert.Error(t, err, "a private key without verification keys")
	_, err = grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKeyPEM: readPEM(t, "rsa1024.pem"), Keys: f.serverKeys(t)})
	assert.Error(t, err, "a 1024-bit private key")
	_, err = grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKeyPEM: readPEM(t, "rsa2048.pem"), PrivateKey: f.priv, Keys: f.serverKeys(t)})
	assert.Error(t, err, "both key forms")
	u, err := grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKeyPEM: readPEM(t, "rsa2048.pem"), Keys: f.serverKeys(t)})
	require.NoError(t, err)
	assert.True(t, u.Configured())
}
