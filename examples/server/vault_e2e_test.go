package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/vault"
)

// The vault groups of TestAuthEndToEnd drive the Encryption vault routes
// of the reference server as run mounts them (behind the real Bearer
// middleware), every answer validated against openapi.yaml: the client's
// walk through every route, and the server's faults (a stored key that
// does not unwrap, the database gone). 5 password operations in all.

func vaultPath(p string) string { return vaultPrefix + p }

func e2eVault(t *testing.T, f *e2eServer) {
	var walked []string
	for _, rt := range vaultRoutes() {
		walked = append(walked, rt.method+" "+rt.path)
	}
	require.ElementsMatch(t, f.auth.vault.Routes(), walked, "the test walks every route of the vault handler")

	alice := f.signup("alice@example.test", e2ePass1)
	a := withBearer(f.login("alice@example.test", e2ePass1).AccessToken)

	// Without a token (or with a bad one) every route is refused by the
	// middleware, with the RFC 6750 challenge.
	for _, rt := range vaultRoutes() {
		r := f.expect(401, rt.method, vaultPath(rt.path), rt.body)
		assert.Equal(t, "UNAUTHORIZED", decodeEnvelope(t, r.body).Error.Code, "%s %s", rt.method, rt.path)
		assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"), "%s %s", rt.method, rt.path)
	}
	r := f.expect(401, "GET", vaultPath("/key"), nil, withBearer("x.y.z"))
	assert.Equal(t, "TOKEN_INVALID", decodeEnvelope(t, r.body).Error.Code)
	assert.Equal(t, `Bearer error="invalid_token"`, r.header.Get("WWW-Authenticate"))
	f.expectCode(401, "TOKEN_INVALID", "POST", vaultPath("/init"), nil, withBearer(f.foreignToken(alice.ID, alice.Email)))
	f.expectCode(401, "TOKEN_EXPIRED", "GET", vaultPath("/status"), nil, withBearer(f.expiredToken(alice.ID, alice.Email)))
	f.expectCode(401, "UNAUTHORIZED", "GET", vaultPath("/key"), nil, withHeader("Authorization", "Basic YWxpY2U6cHc="))

	// Before init: no vault anywhere.
	assert.Equal(t, vaultStatusBody{}, f.vaultStatus(a))
	recKey := randomBytes(t, 32) // stands in for the key the client derives from the recovery code
	for _, rt := range vaultRoutes() {
		if rt.path == "/status" {
			continue
		}
		if rt.path == "/init" {
			continue // creates it
		}
		body := rt.body
		if rt.path == "/recovery-wrap" && rt.method == "POST" {
			body = recoveryBody(t, recKey, randomBytes(t, 32))
		}
		f.expectCode(404, "VAULT_NOT_FOUND", rt.method, vaultPath(rt.path), body, a)
	}
	assert.Equal(t, vaultStatusBody{}, f.vaultStatus(a), "the refusals created nothing")

	// Bodies: init's is optional, but anything other than a JSON object
	// (or nothing) is refused; over 64 KiB is refused on every route that
	// reads one.
	f.expectCode(400, "BAD_REQUEST", "POST", vaultPath("/init"), `[1]`, a)
	f.expectCode(400, "BAD_REQUEST", "POST", vaultPath("/init"), `{}`, a, withHeader("Content-Type", "text/plain"))
	huge := `{"x":"` + strings.Repeat("a", 70<<10) + `"}`
	for _, rt := range vaultRoutes() {
		if rt.method != "GET" { // the GET routes read no body
			f.expectCode(413, "PAYLOAD_TOO_LARGE", rt.method, vaultPath(rt.path), huge, a)
		}
	}
	assert.False(t, f.vaultStatus(a).VaultExists)

	// Init: 32 random bytes, wrapped under the (development) KEK; again
	// and again the same key.
	k1 := f.vaultKey(200, "POST", "/init", nil, a)
	require.Len(t, k1.MasterKey, vault.MasterKeySize)
	assert.Equal(t, vault.DevelopmentKEKID, k1.KEKID)
	assert.Equal(t, vault.FormatVersion, k1.FormatVersion)
	assert.False(t, k1.RequiresRecoveryCode)
	assert.NotEqual(t, make([]byte, 32), k1.MasterKey)
	assert.Equal(t, k1, f.vaultKey(200, "POST", "/init", `{"ignored":true}`, a), "init is idempotent")
	assert.Equal(t, k1, f.vaultKey(200, "GET", "/key", nil, a))
	assert.Equal(t, vaultStatusBody{VaultExists: true}, f.vaultStatus(a))

	// A recovery wrap of k1; rotation replaces the key and drops the wrap
	// (it held the old key).
	f.setRecovery(a, recKey, k1.MasterKey)
	k2 := f.vaultKey(200, "POST", "/rotate", nil, a)
	require.Len(t, k2.MasterKey, vault.MasterKeySize)
	assert.NotEqual(t, k1.MasterKey, k2.MasterKey, "rotation makes a new key")
	assert.Equal(t, vault.DevelopmentKEKID, k2.KEKID)
	assert.Equal(t, k2, f.vaultKey(200, "GET", "/key", nil, a))
	assert.Equal(t, vaultStatusBody{VaultExists: true}, f.vaultStatus(a), "rotation wiped the recovery wrap")
	f.expectCode(400, "BAD_REQUEST", "POST", vaultPath("/rotate"), `"x"`, a)

	// Zero knowledge needs a recovery wrap.
	f.expectCode(400, "RECOVERY_WRAP_MISSING", "POST", vaultPath("/zero-knowledge"), map[string]any{"enable": true}, a)

	// The recovery wrap's validation.
	rw := vaultPath("/recovery-wrap")
	e := f.expectCode(400, "VALIDATION_FAILED", "POST", rw, map[string]any{}, a)
	assert.Equal(t, map[string]any{"recoveryWrappedMk": "must be base64 of 48 to 1024 bytes",
		"recoveryIv": "must be base64 of exactly 12 bytes"}, e.Details["fields"])
	b64 := base64.StdEncoding.EncodeToString
	for name, c := range map[string]struct {
		body  map[string]any
		field string
	}{
		"short wrap":    {map[string]any{"recoveryWrappedMk": b64(make([]byte, 47)), "recoveryIv": b64(make([]byte, 12))}, "recoveryWrappedMk"},
		"long wrap":     {map[string]any{"recoveryWrappedMk": b64(make([]byte, 1025)), "recoveryIv": b64(make([]byte, 12))}, "recoveryWrappedMk"},
		"short iv":      {map[string]any{"recoveryWrappedMk": b64(make([]byte, 48)), "recoveryIv": b64(make([]byte, 11))}, "recoveryIv"},
		"unpadded wrap": {map[string]any{"recoveryWrappedMk": base64.RawStdEncoding.EncodeToString(make([]byte, 49)), "recoveryIv": b64(make([]byte, 12))}, "recoveryWrappedMk"},
		"url alphabet":  {map[string]any{"recoveryWrappedMk": b64(make([]byte, 48)), "recoveryIv": "________________"}, "recoveryIv"},
	} {
		e := f.expectCode(400, "VALIDATION_FAILED", "POST", rw, c.body, a, name)
		fields, _ := e.Details["fields"].(map[string]any)
		assert.Equal(t, []string{c.field}, slices.Collect(maps.Keys(fields)), name)
	}
	f.expectCode(400, "BAD_REQUEST", "POST", rw, map[string]any{"recoveryWrappedMk": 5, "recoveryIv": b64(make([]byte, 12))}, a)
	f.expectCode(400, "BAD_REQUEST", "POST", rw, nil, a, "the body is required")

	// Set, clear (then clearing again is a no-op), set again.
	f.setRecovery(a, recKey, k2.MasterKey)
	assert.Equal(t, vaultStatusBody{VaultExists: true}, f.decodeStatus(f.expect(200, "DELETE", rw, nil, a)))
	assert.Equal(t, vaultStatusBody{VaultExists: true}, f.decodeStatus(f.expect(200, "DELETE", rw, nil, a)))
	f.expectCode(400, "BAD_REQUEST", "DELETE", rw, `{`, a)
	wrapped, iv := f.setRecovery(a, recKey, k2.MasterKey)

	// Zero knowledge on (twice: idempotent). The key answers are now the
	// recovery wrap only, and the client opens it with the recovery code.
	zk := vaultPath("/zero-knowledge")
	st := f.decodeStatus(f.expect(200, "POST", zk, map[string]any{"enable": true}, a))
	assert.True(t, st.VaultExists)
	assert.True(t, st.HasRecoveryWrap)
	assert.True(t, st.ZeroKnowledge)
	require.NotNil(t, st.RecoverySetAt)
	assert.Equal(t, st, f.decodeStatus(f.expect(200, "POST", zk, map[string]any{"enable": true}, a)))
	assert.Equal(t, st, f.vaultStatus(a))
	zkKey := vaultKeyBody{RequiresRecoveryCode: true, RecoveryWrappedMK: wrapped, RecoveryIV: iv, FormatVersion: vault.RecoveryFormatVersion}
	for _, m := range []string{"GET /key", "POST /init"} {
		method, path, _ := strings.Cut(m, " ")
		r := f.expect(200, method, vaultPath(path), nil, a)
		assert.NotContains(t, string(r.body), "masterKey", m)
		assert.NotContains(t, string(r.body), "kekId", m)
		assert.Equal(t, zkKey, decodeJSON[vaultKeyBody](t, r.body), m)
	}
	assert.Equal(t, k2.MasterKey, openRecovery(t, recKey, wrapped, iv))

	// What zero-knowledge mode refuses.
	f.expectCode(409, "ZK_ROTATE_FORBIDDEN", "POST", vaultPath("/rotate"), nil, a)
	f.expectCode(409, "ZK_ACTIVE", "DELETE", rw, nil, a)
	assert.Equal(t, zkKey, f.vaultKey(200, "GET", "/key", nil, a), "the refusals changed nothing")

	// Disabling with a key that is not 32 bytes of standard base64, or
	// without the fields, is refused and changes nothing.
	for name, body := range map[string]any{
		"31 bytes":    map[string]any{"enable": false, "masterKey": b64(k2.MasterKey[:31])},
		"33 bytes":    map[string]any{"enable": false, "masterKey": b64(append(bytes.Clone(k2.MasterKey), 0))},
		"not base64":  map[string]any{"enable": false, "masterKey": "not base64!"},
		"url base64":  map[string]any{"enable": false, "masterKey": base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))},
		"no key":      map[string]any{"enable": false},
		"empty key":   map[string]any{"enable": false, "masterKey": ""},
		"null enable": map[string]any{"enable": nil, "masterKey": b64(k2.MasterKey)},
	} {
		field := "masterKey"
		if strings.HasSuffix(name, "enable") {
			field = "enable"
		}
		e := f.expectCode(400, "VALIDATION_FAILED", "POST", zk, body, a, name)
		assert.Contains(t, e.Details["fields"], field, name)
	}
	f.expectCode(400, "VALIDATION_FAILED", "POST", zk, map[string]any{}, a)
	f.expectCode(400, "BAD_REQUEST", "POST", zk, map[string]any{"enable": "no"}, a)
	assert.Equal(t, st, f.vaultStatus(a), "still in zero-knowledge mode")

	// 32 bytes that are not the vault's key (here the key from before the
	// rotation, as a client with a stale copy or a wrong recovery code
	// would send) are refused against the key check value stored when the
	// mode went on: nothing changes.
	e = f.expectCode(400, "VALIDATION_FAILED", "POST", zk, map[string]any{"enable": false, "masterKey": b64(k1.MasterKey)}, a)
	assert.Equal(t, map[string]any{"masterKey": "does not match the key of this vault"}, e.Details["fields"])
	assert.Equal(t, st, f.vaultStatus(a), "a wrong key leaves zero-knowledge mode on")
	assert.Equal(t, zkKey, f.vaultKey(200, "GET", "/key", nil, a), "a wrong key replaces nothing")

	// While it is on, the recovery wrap may be replaced (a new recovery
	// code), never removed.
	wrapped, iv = f.setRecovery(a, recKey, k2.MasterKey)
	zkKey.RecoveryWrappedMK, zkKey.RecoveryIV = wrapped, iv
	assert.Equal(t, zkKey, f.vaultKey(200, "GET", "/key", nil, a))
	assert.True(t, f.vaultStatus(a).ZeroKnowledge)

	// Off with the key opened from the recovery wrap: the server holds it
	// again, under its KEK, and the recovery wrap stays.
	opened := openRecovery(t, recKey, wrapped, iv)
	st = f.decodeStatus(f.expect(200, "POST", zk, map[string]any{"enable": false, "masterKey": b64(opened)}, a))
	assert.True(t, st.VaultExists)
	assert.True(t, st.HasRecoveryWrap)
	assert.False(t, st.ZeroKnowledge)
	assert.Equal(t, k2, f.vaultKey(200, "GET", "/key", nil, a), "the client's key is the vault key again")
	// Off already: nothing changes (the key sent is not taken).
	f.expect(200, "POST", zk, map[string]any{"enable": false, "masterKey": b64(make([]byte, 32))}, a)
	assert.Equal(t, k2, f.vaultKey(200, "GET", "/key", nil, a), "a second disable does not replace the key")
	assert.Equal(t, vaultStatusBody{VaultExists: true}, f.decodeStatus(f.expect(200, "DELETE", rw, nil, a)))

	// A second user sees none of it.
	bob := f.signup("bob@example.test", e2ePass2)
	b := withBearer(f.login("bob@example.test", e2ePass2).AccessToken)
	assert.Equal(t, vaultStatusBody{}, f.vaultStatus(b))
	for _, rt := range vaultRoutes() {
		if rt.path == "/status" || rt.path == "/init" {
			continue
		}
		body := rt.body
		if rt.path == "/recovery-wrap" && rt.method == "POST" {
			body = recoveryBody(t, recKey, k2.MasterKey)
		}
		f.expectCode(404, "VAULT_NOT_FOUND", rt.method, vaultPath(rt.path), body, b)
	}
	kb := f.vaultKey(200, "POST", "/init", nil, b)
	assert.NotEqual(t, k2.MasterKey, kb.MasterKey)
	assert.Equal(t, k2, f.vaultKey(200, "GET", "/key", nil, a), "bob's init left alice's vault alone")
	assert.Equal(t, kb, f.vaultKey(200, "GET", "/key", nil, b))

	// A valid token whose user does not exist (a deleted account): its
	// sessions went with it, so the live-session check refuses it.
	ghost := withBearer(f.validToken(uuid.New(), "ghost@example.test"))
	for _, p := range []string{"POST /init", "GET /status", "GET /key"} {
		method, path, _ := strings.Cut(p, " ")
		f.expectCode(401, "TOKEN_INVALID", method, vaultPath(path), nil, ghost)
	}

	// The audit trail: failures included, status never, key material never.
	rows := f.vaultAudit(alice.ID)
	assert.NotContains(t, actionsOf(rows), "status")
	for _, want := range []vaultAuditRow{
		{"key", 404, "VAULT_NOT_FOUND"},
		{"init", 400, "BAD_REQUEST"},
		{"init", 200, ""},
		{"rotate", 200, ""},
		{"zk_enable", 400, "RECOVERY_WRAP_MISSING"},
		{"recovery_set", 400, "VALIDATION_FAILED"},
		{"zk_enable", 200, ""},
		{"rotate", 409, "ZK_ROTATE_FORBIDDEN"},
		{"recovery_clear", 409, "ZK_ACTIVE"},
		{"zero_knowledge", 400, "VALIDATION_FAILED"},
		{"zk_disable", 400, "VALIDATION_FAILED"},
		{"zk_disable", 200, ""},
	} {
		assert.Contains(t, rows, want)
	}
	raw := f.vaultAuditContexts(alice.ID)
	for _, k := range [][]byte{k1.MasterKey, k2.MasterKey, wrapped} {
		assert.NotContains(t, raw, b64(k), "no key material in the audit trail")
	}
	assert.Equal(t, []vaultAuditRow{
		{"key", 404, "VAULT_NOT_FOUND"}, {"rotate", 404, "VAULT_NOT_FOUND"}, {"recovery_set", 404, "VAULT_NOT_FOUND"},
		{"recovery_clear", 404, "VAULT_NOT_FOUND"}, {"zk_enable", 404, "VAULT_NOT_FOUND"}, {"init", 200, ""}, {"key", 200, ""},
	}, f.vaultAudit(bob.ID), "bob's trail is his own actions, and all of them")

	// The metrics see each vault route by its pattern.
	metrics := string(f.expect(200, "GET", "/metrics", nil).body)
	assert.Contains(t, metrics, `mana_auth_http_requests_total{code="409",method="POST",route="POST /api/v1/me/encryption-vault/rotate"} 1`)
	assert.Contains(t, metrics, `mana_auth_http_requests_total{code="200",method="GET",route="GET /api/v1/me/encryption-vault/status"}`)
}

// e2eVaultFaults: a stored key that does not unwrap is 500 (never a new
// key, never "no vault"), and with the database unreachable every vault
// route answers 503, never an answer that blames the user. 1 password
// operation.
func e2eVaultFaults(t *testing.T, f *e2eServer) {
	carol := f.register("carol@example.test", e2ePass1)
	c := withBearer(f.validToken(carol.ID, carol.Email))
	k := f.vaultKey(200, "POST", "/init", nil, c)

	// Flip one bit of the stored ciphertext.
	err := vault.RunAsUser(context.Background(), f.db.Owner, carol.ID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(context.Background(), `UPDATE auth.encryption_vaults
			SET wrapped_mk = set_byte(wrapped_mk, 0, get_byte(wrapped_mk, 0) # 1) WHERE user_id = $1`, carol.ID)
		if err == nil && tag.RowsAffected() != 1 {
			t.Errorf("corrupted %d rows, want 1", tag.RowsAffected())
		}
		return err
	})
	require.NoError(t, err)
	for _, m := range []string{"GET /key", "POST /init"} {
		method, path, _ := strings.Cut(m, " ")
		r := f.expect(500, method, vaultPath(path), nil, c)
		env := decodeEnvelope(t, r.body)
		assert.Equal(t, "INTERNAL", env.Error.Code, m)
		assert.Nil(t, env.Error.Details, "%s: no details on a 5xx", m)
		for _, leak := range []string{"unwrap", "kek", vault.DevelopmentKEKID, "masterKey"} {
			assert.NotContains(t, string(r.body), leak, m)
		}
	}
	assert.Equal(t, vaultStatusBody{VaultExists: true}, f.vaultStatus(c), "the vault is still there")
	metrics := string(f.expect(200, "GET", "/metrics", nil).body)
	assert.Contains(t, metrics, "mana_auth_vault_unwrap_failures_total 2")
	logs := f.logs.String()
	assert.Contains(t, logs, "stored master key could not be unwrapped")
	assert.Contains(t, logs, "kek_id="+vault.DevelopmentKEKID)
	assert.NotContains(t, logs, base64.StdEncoding.EncodeToString(k.MasterKey), "the key is never logged")

	// The database goes away.
	f.proxy.Cut()
	for _, rt := range vaultRoutes() {
		body := rt.body
		if rt.path == "/recovery-wrap" && rt.method == "POST" {
			body = recoveryBody(t, randomBytes(t, 32), k.MasterKey)
		}
		r := f.expect(503, rt.method, vaultPath(rt.path), body, c)
		env := decodeEnvelope(t, r.body)
		assert.Equal(t, "SERVICE_UNAVAILABLE", env.Error.Code, "%s %s", rt.method, rt.path)
		assert.Nil(t, env.Error.Details, "%s %s: no details on a 5xx", rt.method, rt.path)
		for _, leak := range []string{"127.0.0.1", "dial", "refused", "SQLSTATE", "pgx"} {
			assert.NotContains(t, string(r.body), leak, "%s %s", rt.method, rt.path)
		}
	}
	f.expectCode(401, "UNAUTHORIZED", "GET", vaultPath("/key"), nil) // the middleware needs no database
	f.proxy.Restore()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if f.send("GET", vaultPath("/status"), nil, c).status == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "status still fails 10 s after the database is back")
	}
}

// ---- helpers ----

type vaultRoute struct {
	method, path string
	body         any // a body the route accepts
}

// vaultRoutes is every route of the vault handler, with a body it accepts.
func vaultRoutes() []vaultRoute {
	return []vaultRoute{
		{"POST", "/init", nil},
		{"GET", "/key", nil},
		{"POST", "/rotate", nil},
		{"GET", "/status", nil},
		{"POST", "/recovery-wrap", map[string]any{"recoveryWrappedMk": base64.StdEncoding.EncodeToString(make([]byte, 48)),
			"recoveryIv": base64.StdEncoding.EncodeToString(make([]byte, 12))}},
		{"DELETE", "/recovery-wrap", nil},
		{"POST", "/zero-knowledge", map[string]any{"enable": true}},
	}
}

// vaultKeyBody is either shape of a key answer (openapi.yaml's VaultKey;
// the spec client has already checked that exactly one of them came).
type vaultKeyBody struct {
	MasterKey            []byte `json:"masterKey"`
	FormatVersion        int    `json:"formatVersion"`
	KEKID                string `json:"kekId"`
	RequiresRecoveryCode bool   `json:"requiresRecoveryCode"`
	RecoveryWrappedMK    []byte `json:"recoveryWrappedMk"`
	RecoveryIV           []byte `json:"recoveryIv"`
}

type vaultStatusBody struct {
	VaultExists     bool       `json:"vaultExists"`
	HasRecoveryWrap bool       `json:"hasRecoveryWrap"`
	ZeroKnowledge   bool       `json:"zeroKnowledge"`
	RecoverySetAt   *time.Time `json:"recoverySetAt"`
}

func (f *e2eServer) vaultKey(want int, method, path string, body any, extra ...any) vaultKeyBody {
	f.t.Helper()
	return decodeJSON[vaultKeyBody](f.t, f.expect(want, method, vaultPath(path), body, extra...).body)
}

func (f *e2eServer) decodeStatus(r e2eReply) vaultStatusBody {
	f.t.Helper()
	return decodeJSON[vaultStatusBody](f.t, r.body)
}

func (f *e2eServer) vaultStatus(extra ...any) vaultStatusBody {
	f.t.Helper()
	return f.decodeStatus(f.expect(200, "GET", vaultPath("/status"), nil, extra...))
}

// setRecovery wraps mk under recKey as a client would (AES-256-GCM, a
// fresh IV), stores it and checks the status answered; it returns the wrap
// and its IV.
func (f *e2eServer) setRecovery(bearer reqOpt, recKey, mk []byte) (wrapped, iv []byte) {
	t := f.t
	t.Helper()
	body := recoveryBody(t, recKey, mk)
	before := time.Now().Add(-time.Second)
	st := f.decodeStatus(f.expect(200, "POST", vaultPath("/recovery-wrap"), body, bearer))
	assert.True(t, st.VaultExists)
	assert.True(t, st.HasRecoveryWrap)
	require.NotNil(t, st.RecoverySetAt)
	assert.WithinRange(t, *st.RecoverySetAt, before, time.Now().Add(time.Second))
	assert.Equal(t, time.UTC, st.RecoverySetAt.Location())
	wrapped, err := base64.StdEncoding.DecodeString(body["recoveryWrappedMk"].(string))
	require.NoError(t, err)
	iv, err = base64.StdEncoding.DecodeString(body["recoveryIv"].(string))
	require.NoError(t, err)
	return wrapped, iv
}

func recoveryBody(t *testing.T, recKey, mk []byte) map[string]any {
	t.Helper()
	iv := randomBytes(t, 12)
	wrapped := recoveryAEAD(t, recKey).Seal(nil, iv, mk, nil)
	require.Len(t, wrapped, 48)
	return map[string]any{"recoveryWrappedMk": base64.StdEncoding.EncodeToString(wrapped),
		"recoveryIv": base64.StdEncoding.EncodeToString(iv)}
}

func openRecovery(t *testing.T, recKey, wrapped, iv []byte) []byte {
	t.Helper()
	mk, err := recoveryAEAD(t, recKey).Open(nil, iv, wrapped, nil)
	require.NoError(t, err, "the recovery wrap opens with the recovery key")
	return mk
}

func recoveryAEAD(t *testing.T, key []byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	return aead
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// vaultAuditRow is one row of auth.encryption_vault_audit: action, HTTP
// status and the error code of a failure.
type vaultAuditRow struct {
	action string
	status int
	code   string
}

// vaultAudit reads userID's audit rows, oldest first, through the
// row-level security the server runs under.
func (f *e2eServer) vaultAudit(userID uuid.UUID) []vaultAuditRow {
	f.t.Helper()
	var out []vaultAuditRow
	err := vault.RunAsUser(context.Background(), f.db.Owner, userID, func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT action, coalesce(http_status, 0), coalesce(context->>'code', '')
			FROM auth.encryption_vault_audit WHERE user_id = $1 ORDER BY id`, userID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (vaultAuditRow, error) {
			var a vaultAuditRow
			return a, r.Scan(&a.action, &a.status, &a.code)
		})
		return err
	})
	require.NoError(f.t, err)
	require.NotEmpty(f.t, out)
	return out
}

// vaultAuditContexts is every audit context of userID as one string.
func (f *e2eServer) vaultAuditContexts(userID uuid.UUID) string {
	f.t.Helper()
	var s string
	err := vault.RunAsUser(context.Background(), f.db.Owner, userID, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT coalesce(string_agg(context::text, ' '), '')
			FROM auth.encryption_vault_audit WHERE user_id = $1`, userID).Scan(&s)
	})
	require.NoError(f.t, err)
	return s
}

func actionsOf(rows []vaultAuditRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.action)
	}
	return out
}
