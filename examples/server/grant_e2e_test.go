package main

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/grant"
)

// The mission key grant group of TestAuthEndToEnd drives
// POST /api/v1/me/ai-mission-grant as run mounts it (behind the real Bearer
// middleware), every answer validated against openapi.yaml, and opens the
// grants the way the AI service does: grant.Unwrapper with the RSA private
// key and the server's own JWKS. The mission data key it gets is checked
// against HKDF-SHA256 of the vault master key computed here, by hand.
//
// The group's own server runs without MANA_AI_PUBLIC_KEY_PEM (every grant
// request answers 503 GRANT_NOT_CONFIGURED, logged at error level); the
// group then starts a second server configured with an RSA key generated
// here. 3 password operations.

func e2eGrants(t *testing.T, f *e2eServer) {
	e2eGrantNotConfigured(t, f)

	priv, err := rsa.GenerateKey(rand.Reader, grant.RecommendedRSABits)
	require.NoError(t, err)
	g := newE2EServer(t, f.cov, e2eSetup{env: map[string]string{"MANA_AI_PUBLIC_KEY_PEM": publicKeyPEM(t, &priv.PublicKey)}})
	e2eGrantIssued(t, g, priv)
}

// e2eGrantNotConfigured: without MANA_AI_PUBLIC_KEY_PEM every grant request
// of an authenticated caller answers 503 GRANT_NOT_CONFIGURED, before the
// body or the vault are looked at. 1 password operation.
func e2eGrantNotConfigured(t *testing.T, f *e2eServer) {
	assert.Contains(t, f.logs.String(), "MANA_AI_PUBLIC_KEY_PEM is not set", "the server says so at start")
	carol := f.register("carol@example.test", e2ePass1)
	c := withBearer(f.validToken(carol.ID, carol.Email))
	f.vaultKey(200, "POST", "/init", nil, c)

	for name, body := range map[string]any{
		"valid":         map[string]any{"missionId": "mission-1"},
		"with ttl":      map[string]any{"missionId": "mission-1", "ttlSeconds": 7200},
		"invalid":       map[string]any{"missionId": "a|b"},
		"malformed":     `{"missionId":`,
		"without body":  nil,
		"over the size": `{"missionId":"` + strings.Repeat("m", maxBody) + `"}`,
	} {
		r := f.expect(503, "POST", grantPath, body, c, name)
		env := decodeEnvelope(t, r.body)
		assert.Equal(t, "GRANT_NOT_CONFIGURED", env.Error.Code, name)
		assert.Nil(t, env.Error.Details, "%s: no details on a 5xx", name)
		assert.Empty(t, r.header.Get("Retry-After"), "%s: retrying does not help", name)
	}
	// The middleware still comes first.
	r := f.expect(401, "POST", grantPath, map[string]any{"missionId": "mission-1"})
	assert.Equal(t, "UNAUTHORIZED", decodeEnvelope(t, r.body).Error.Code)
	assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"))

	assert.Empty(t, f.grantEvents(carol.ID), "no grant, no GRANT_ISSUED event")
	assert.Contains(t, string(f.expect(200, "GET", "/metrics", nil).body),
		`mana_auth_http_requests_total{code="503",method="POST",route="POST `+grantPath+`"} 6`)
}

// e2eGrantIssued walks the configured route: its refusals, grants of every
// TTL, unwrapping them as the AI service does, and the security events.
// 2 password operations.
func e2eGrantIssued(t *testing.T, f *e2eServer, priv *rsa.PrivateKey) {
	assert.NotContains(t, f.logs.String(), "MANA_AI_PUBLIC_KEY_PEM is not set")
	alice := f.signup("alice@example.test", e2ePass1)
	access := f.login("alice@example.test", e2ePass1).AccessToken
	a := withBearer(access)
	mission := map[string]any{"missionId": "mission-1"}

	// The Bearer middleware answers first, with the RFC 6750 challenge.
	r := f.expect(401, "POST", grantPath, mission)
	assert.Equal(t, "UNAUTHORIZED", decodeEnvelope(t, r.body).Error.Code)
	assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"))
	r = f.expect(401, "POST", grantPath, mission, withBearer("x.y.z"))
	assert.Equal(t, "TOKEN_INVALID", decodeEnvelope(t, r.body).Error.Code)
	assert.Equal(t, `Bearer error="invalid_token"`, r.header.Get("WWW-Authenticate"))
	f.expectCode(401, "TOKEN_INVALID", "POST", grantPath, mission, withBearer(f.foreignToken(alice.ID, alice.Email)))
	f.expectCode(401, "TOKEN_EXPIRED", "POST", grantPath, mission, withBearer(f.expiredToken(alice.ID, alice.Email)))
	f.expectCode(401, "UNAUTHORIZED", "POST", grantPath, mission, withHeader("Authorization", "Basic YWxpY2U6cHc="))

	// The body is checked before the vault: these are 400 without a vault.
	f.expectCode(400, "BAD_REQUEST", "POST", grantPath, nil, a, "the body is required")
	f.expectCode(400, "BAD_REQUEST", "POST", grantPath, `{"missionId":`, a)
	f.expectCode(400, "BAD_REQUEST", "POST", grantPath, `["mission-1"]`, a)
	f.expectCode(400, "BAD_REQUEST", "POST", grantPath, map[string]any{"missionId": 5}, a)
	f.expectCode(400, "BAD_REQUEST", "POST", grantPath, `{"missionId":"mission-1"}`, a, withHeader("Content-Type", "text/plain"))
	for name, c := range map[string]struct {
		body   map[string]any
		fields map[string]any
	}{
		"missing":        {map[string]any{}, map[string]any{"missionId": "required"}},
		"empty":          {map[string]any{"missionId": ""}, map[string]any{"missionId": "required"}},
		"separator":      {map[string]any{"missionId": "a|b"}, map[string]any{"missionId": "must not contain '|'"}},
		"newline":        {map[string]any{"missionId": "two\nlines"}, map[string]any{"missionId": "must not contain control characters"}},
		"C1 control":     {map[string]any{"missionId": "next\u0085line"}, map[string]any{"missionId": "must not contain control characters"}},
		"201 characters": {map[string]any{"missionId": strings.Repeat("é", 201)}, map[string]any{"missionId": "must be at most 200 characters"}},
		"ttl string":     {map[string]any{"missionId": "m", "ttlSeconds": "3600"}, map[string]any{"ttlSeconds": "must be an integer number of seconds"}},
		"ttl fraction":   {map[string]any{"missionId": "m", "ttlSeconds": 3600.5}, map[string]any{"ttlSeconds": "must be an integer number of seconds"}},
		"ttl boolean":    {map[string]any{"missionId": "m", "ttlSeconds": true}, map[string]any{"ttlSeconds": "must be an integer number of seconds"}},
		"both fields":    {map[string]any{"missionId": "a|b", "ttlSeconds": []int{1}}, map[string]any{"missionId": "must not contain '|'", "ttlSeconds": "must be an integer number of seconds"}},
		"valid ttl":      {map[string]any{"missionId": "", "ttlSeconds": 60}, map[string]any{"missionId": "required"}},
	} {
		e := f.expectCode(400, "VALIDATION_FAILED", "POST", grantPath, c.body, a, name)
		assert.Equal(t, c.fields, e.Details["fields"], name)
	}
	f.expectCode(413, "PAYLOAD_TOO_LARGE", "POST", grantPath, `{"missionId":"`+strings.Repeat("m", maxBody)+`"}`, a)

	// No vault yet; nor for a still valid token of an account that is gone.
	f.expectCode(404, "VAULT_NOT_FOUND", "POST", grantPath, mission, a)
	f.expectCode(401, "TOKEN_INVALID", "POST", grantPath, mission, withBearer(f.validToken(uuid.New(), "ghost@example.test")))

	k := f.vaultKey(200, "POST", "/init", nil, a)
	require.Len(t, k.MasterKey, 32)
	u := f.newGrantUnwrapper(priv)
	ctx := context.Background()

	// A grant with the default TTL, opened as the AI service does.
	before := time.Now().Truncate(time.Second)
	r = f.expect(200, "POST", grantPath, mission, a, withHeader("User-Agent", "mana-e2e-grants/1"))
	after := time.Now()
	g1 := decodeJSON[grant.Grant](t, r.body)
	assert.Equal(t, alice.ID.String(), g1.UserID)
	assert.Equal(t, "mission-1", g1.MissionID)
	assert.Equal(t, "HKDF-SHA256", g1.Derivation.KDF)
	assert.Equal(t, "mana-ai-mission-grant/v1|"+alice.ID.String()+"|mission-1", g1.Derivation.Info)
	assert.Equal(t, f.key.ID, g1.SignatureKID, "signed with the token-signing key")
	assert.WithinRange(t, g1.IssuedAt, before, after)
	assert.Equal(t, time.UTC, g1.IssuedAt.Location())
	assert.Equal(t, 24*time.Hour, g1.ExpiresAt.Sub(g1.IssuedAt), "the default TTL")
	assert.Len(t, mustB64(t, g1.Derivation.Salt), 32)
	assert.Len(t, mustB64(t, g1.WrappedKey), priv.Size(), "one RSA block of the AI service's key")
	assert.Equal(t, 86400, unixOf(t, r.body, "expiresAt")-unixOf(t, r.body, "issuedAt"))

	mdk1, err := u.UnwrapJSON(ctx, r.body)
	require.NoError(t, err, "the grant unwraps with the AI service's key and the server's JWKS")
	want := hkdfSHA256(k.MasterKey, mustB64(t, g1.Derivation.Salt), []byte(g1.Derivation.Info))
	assert.Equal(t, want, mdk1, "the mission data key is HKDF-SHA256(master key, salt, info)")
	assert.NotEqual(t, k.MasterKey, mdk1, "never the master key itself")
	f.checkGrantWire(priv, g1, mdk1)

	// Each grant is a new salt and so a new key; the same master key
	// derives either.
	g2, raw2 := f.grantOK(a, mission)
	mdk2, err := u.UnwrapJSON(ctx, raw2)
	require.NoError(t, err)
	assert.NotEqual(t, g1.Derivation.Salt, g2.Derivation.Salt)
	assert.NotEqual(t, mdk1, mdk2)
	assert.Equal(t, hkdfSHA256(k.MasterKey, mustB64(t, g2.Derivation.Salt), []byte(g2.Derivation.Info)), mdk2)

	// A mission id of 200 characters (400 bytes) is accepted.
	long := strings.Repeat("é", 200)
	g3, raw3 := f.grantOK(a, map[string]any{"missionId": long})
	assert.Equal(t, long, g3.MissionID)
	mdk3, err := u.UnwrapJSON(ctx, raw3)
	require.NoError(t, err)
	assert.Equal(t, hkdfSHA256(k.MasterKey, mustB64(t, g3.Derivation.Salt), []byte("mana-ai-mission-grant/v1|"+alice.ID.String()+"|"+long)), mdk3)

	// The TTL is clamped to [1 h, 30 d], never refused.
	issued := []grant.Grant{g1, g2, g3}
	for _, c := range []struct {
		ttl  string // the JSON value
		want time.Duration
	}{
		{"10", time.Hour},
		{"1000000000", 30 * 24 * time.Hour},
		{"0", time.Hour},
		{"-5", time.Hour},
		{"null", 24 * time.Hour},
		{"7200", 2 * time.Hour},
		{"7200.0", 2 * time.Hour},
		{"1e4", 10000 * time.Second},
		{"1e400", 30 * 24 * time.Hour},
		{"99999999999999999999", 30 * 24 * time.Hour},
	} {
		g, _ := f.grantOK(a, `{"missionId":"mission-ttl","ttlSeconds":`+c.ttl+`}`)
		assert.Equal(t, c.want, g.ExpiresAt.Sub(g.IssuedAt), "ttlSeconds %s", c.ttl)
		issued = append(issued, g)
	}

	// The clamped expiry is the one bound into the grant: it opens until
	// then, and not at or after it.
	short := issued[3]
	require.Equal(t, time.Hour, short.ExpiresAt.Sub(short.IssuedAt))
	at := func(tm time.Time) *grant.Unwrapper { return f.newGrantUnwrapperAt(priv, tm) }
	mdk, err := at(short.ExpiresAt.Add(-time.Second)).Unwrap(ctx, &short)
	require.NoError(t, err, "a second before expiresAt")
	assert.Equal(t, hkdfSHA256(k.MasterKey, mustB64(t, short.Derivation.Salt), []byte(short.Derivation.Info)), mdk)
	_, err = at(short.ExpiresAt).Unwrap(ctx, &short)
	assert.Equal(t, grant.ReasonExpired, grant.ReasonOf(err), "at expiresAt: %v", err)

	// Any edit is refused, as is a key the JWKS does not hold.
	for name, edit := range map[string]func(g *grant.Grant){
		"mission": func(g *grant.Grant) {
			g.MissionID = "mission-2"
			g.Derivation.Info = "mana-ai-mission-grant/v1|" + g.UserID + "|mission-2"
		},
		"expiry":  func(g *grant.Grant) { g.ExpiresAt = g.ExpiresAt.Add(time.Hour) },
		"salt":    func(g *grant.Grant) { g.Derivation.Salt = g2.Derivation.Salt },
		"wrapped": func(g *grant.Grant) { g.WrappedKey = g2.WrappedKey },
		"user": func(g *grant.Grant) {
			g.UserID = uuid.NewString()
			g.Derivation.Info = "mana-ai-mission-grant/v1|" + g.UserID + "|" + g.MissionID
		},
		"unknown kid": func(g *grant.Grant) { g.SignatureKID = "not-a-published-kid" },
		"no signature": func(g *grant.Grant) {
			g.Signature = ""
		},
	} {
		c := g1
		edit(&c)
		_, err := u.Unwrap(ctx, &c)
		assert.Equal(t, grant.ReasonWrapRejected, grant.ReasonOf(err), "%s: %v", name, err)
	}

	// Zero-knowledge mode: the server holds no key to derive from.
	recKey := randomBytes(t, 32)
	f.setRecovery(a, recKey, k.MasterKey)
	zk := vaultPath("/zero-knowledge")
	assert.True(t, f.decodeStatus(f.expect(200, "POST", zk, map[string]any{"enable": true}, a)).ZeroKnowledge)
	f.expectCode(409, "ZK_ACTIVE", "POST", grantPath, mission, a)
	f.expectCode(409, "ZK_ACTIVE", "POST", grantPath, map[string]any{"missionId": "mission-1", "ttlSeconds": 10}, a)
	f.expectCode(400, "VALIDATION_FAILED", "POST", grantPath, map[string]any{"missionId": ""}, a, "the body is still checked first")
	// Off again (with the key, as the client opens it from the recovery
	// wrap): grants work again, from the same master key.
	f.expect(200, "POST", zk, map[string]any{"enable": false, "masterKey": base64.StdEncoding.EncodeToString(k.MasterKey)}, a)
	g4, raw4 := f.grantOK(a, mission)
	mdk4, err := u.UnwrapJSON(ctx, raw4)
	require.NoError(t, err)
	assert.Equal(t, hkdfSHA256(k.MasterKey, mustB64(t, g4.Derivation.Salt), []byte(g4.Derivation.Info)), mdk4)
	issued = append(issued, g4)

	// One GRANT_ISSUED event per grant, refusals none: mission id, expiry
	// and kid in the metadata, never key material.
	events := f.grantEvents(alice.ID)
	require.Len(t, events, len(issued))
	for i, ev := range events {
		g := issued[i]
		var md map[string]any
		require.NoError(t, json.Unmarshal([]byte(ev.metadata), &md))
		assert.Equal(t, map[string]any{"missionId": g.MissionID, "expiresAt": g.ExpiresAt.UTC().Format(time.RFC3339),
			"signatureKid": g.SignatureKID}, md, "event %d", i)
		assert.Equal(t, "127.0.0.1", ev.ip, "event %d", i)
		for _, secret := range []string{g.WrappedKey, g.Derivation.Salt, g.Signature} {
			assert.NotContains(t, ev.metadata, secret, "event %d", i)
		}
		for _, key := range [][]byte{k.MasterKey, mdk1, mdk2, mdk3, mdk4} {
			assert.NotContains(t, ev.metadata, base64.StdEncoding.EncodeToString(key), "event %d", i)
			assert.NotContains(t, ev.metadata, base64.RawURLEncoding.EncodeToString(key), "event %d", i)
		}
	}
	assert.Equal(t, "mana-e2e-grants/1", events[0].userAgent)
	// The caller sees them too.
	assert.Contains(t, eventTypes(f.events(access, "")), "GRANT_ISSUED")

	metrics := string(f.expect(200, "GET", "/metrics", nil).body)
	assert.Contains(t, metrics, "mana_auth_grants_issued_total "+strconv.Itoa(len(issued)))
	assert.Contains(t, metrics, `mana_auth_http_requests_total{code="409",method="POST",route="POST `+grantPath+`"} 2`)
	assert.NotContains(t, f.logs.String(), base64.StdEncoding.EncodeToString(k.MasterKey), "the key is never logged")
	assert.NotContains(t, f.logs.String(), base64.StdEncoding.EncodeToString(mdk1), "the mission key is never logged")
}

// ---- helpers ----

// grantOK asks for a grant (200) and returns it with the raw answer.
func (f *e2eServer) grantOK(bearer reqOpt, body any) (grant.Grant, []byte) {
	f.t.Helper()
	r := f.expect(200, "POST", grantPath, body, bearer)
	return decodeJSON[grant.Grant](f.t, r.body), r.body
}

// newGrantUnwrapper is the AI service's side: the RSA private key and the
// server's own JWKS (plain http is accepted to the loopback test server).
func (f *e2eServer) newGrantUnwrapper(priv *rsa.PrivateKey) *grant.Unwrapper {
	return f.newGrantUnwrapperAt(priv, time.Time{})
}

// newGrantUnwrapperAt is newGrantUnwrapper on a clock stopped at now (the
// real clock when now is zero).
func (f *e2eServer) newGrantUnwrapperAt(priv *rsa.PrivateKey, now time.Time) *grant.Unwrapper {
	f.t.Helper()
	cfg := grant.JWKSConfig{URL: f.c.srv.URL + "/.well-known/jwks.json"}
	ucfg := grant.UnwrapperConfig{PrivateKey: priv}
	if !now.IsZero() {
		ucfg.Now = func() time.Time { return now }
	}
	keys, err := grant.NewJWKS(cfg)
	require.NoError(f.t, err)
	ucfg.Keys = keys
	u, err := grant.NewUnwrapper(ucfg)
	require.NoError(f.t, err)
	require.True(f.t, u.Configured())
	return u
}

// checkGrantWire checks wire format v1 without the grant package: the
// signature with the key the JWKS publishes under signatureKid, and
// RSA-OAEP-SHA-256 with the label built here.
func (f *e2eServer) checkGrantWire(priv *rsa.PrivateKey, g grant.Grant, mdk []byte) {
	t := f.t
	t.Helper()
	label := "mana-ai-mission-grant/v1|" + g.UserID + "|" + g.MissionID + "|" + strconv.FormatInt(g.ExpiresAt.Unix(), 10)
	set := decodeJSON[e2eJWKS](t, f.expect(200, "GET", "/.well-known/jwks.json", nil).body)
	i := slices.IndexFunc(set.Keys, func(k e2eJWK) bool { return k.Kid == g.SignatureKID })
	require.GreaterOrEqual(t, i, 0, "signatureKid %q is published", g.SignatureKID)
	pub, err := base64.RawURLEncoding.DecodeString(set.Keys[i].X)
	require.NoError(t, err)
	require.Len(t, pub, ed25519.PublicKeySize)
	assert.True(t, ed25519.Verify(ed25519.PublicKey(pub), []byte(label+"|"+g.Derivation.Salt+"|"+g.WrappedKey), mustB64(t, g.Signature)),
		"the signature covers label|salt|wrappedKey")
	plain, err := rsa.DecryptOAEP(sha256.New(), nil, priv, mustB64(t, g.WrappedKey), []byte(label))
	require.NoError(t, err, "RSA-OAEP-SHA-256 with the v1 label")
	assert.Equal(t, mdk, plain)
	_, err = rsa.DecryptOAEP(sha256.New(), nil, priv, mustB64(t, g.WrappedKey), []byte(label+"0"))
	assert.Error(t, err, "the label is bound")
}

// hkdfSHA256 is RFC 5869 HKDF-SHA256 with a 32-byte output (one block),
// written out here so that the check does not share code with the server.
func hkdfSHA256(ikm, salt, info []byte) []byte {
	ext := hmac.New(sha256.New, salt)
	ext.Write(ikm)
	prk := ext.Sum(nil)
	exp := hmac.New(sha256.New, prk)
	exp.Write(info)
	exp.Write([]byte{1})
	return exp.Sum(nil)
}

func publicKeyPEM(t *testing.T, pub *rsa.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	require.NoError(t, err, "standard padded base64: %q", s)
	return b
}

// unixOf reads an RFC 3339 field of a JSON object as Unix seconds.
func unixOf(t *testing.T, body []byte, field string) int {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m))
	var s string
	require.NoError(t, json.Unmarshal(m[field], &s))
	tm, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(s, "Z") && !strings.Contains(s, "."), "%s %q: UTC, whole seconds", field, s)
	return int(tm.Unix())
}

// grantEvent is one GRANT_ISSUED row of auth.security_events.
type grantEvent struct {
	metadata  string
	ip        string
	userAgent string
}

// grantEvents reads userID's GRANT_ISSUED events, oldest first, as the
// owner of the table.
func (f *e2eServer) grantEvents(userID uuid.UUID) []grantEvent {
	f.t.Helper()
	rows, err := f.db.Owner.Query(context.Background(), `SELECT coalesce(metadata::text, ''), coalesce(host(ip_address), ''),
		coalesce(user_agent, '') FROM auth.security_events WHERE user_id = $1 AND event_type = 'GRANT_ISSUED' ORDER BY id`, userID)
	require.NoError(f.t, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (grantEvent, error) {
		var e grantEvent
		return e, r.Scan(&e.metadata, &e.ip, &e.userAgent)
	})
	require.NoError(f.t, err)
	return out
}
