package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/vault"
)

const userHeader = "X-Test-User"

// userFromHeader stands in for a function built on
// token.ClaimsFromContext.
func userFromHeader(r *http.Request) (uuid.UUID, error) {
	v := r.Header.Get(userHeader)
	if v == "" {
		return uuid.Nil, autherr.New(autherr.Unauthorized, "")
	}
	return uuid.Parse(v)
}

type harness struct {
	t   testing.TB
	db  *testutil.Database
	svc *vault.Service
	h   http.Handler
}

func newHarness(t testing.TB, pool *pgxpool.Pool, db *testutil.Database) *harness {
	t.Helper()
	svc := newService(t, pool, nil)
	h, err := vault.NewHandler(svc, vault.HandlerOptions{UserFromRequest: userFromHeader})
	require.NoError(t, err)
	return &harness{t: t, db: db, svc: svc, h: h}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (h *harness) do(user uuid.UUID, method, path, body string) answer {
	h.t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != uuid.Nil {
		req.Header.Set(userHeader, user.String())
	}
	req.Header.Set("User-Agent", "vault-test/1")
	req.RemoteAddr = "192.0.2.7:4711"
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	require.NoError(h.t, json.Unmarshal(rec.Body.Bytes(), &a.body), "body %q", a.raw)
	return a
}

func (a answer) code() string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (a answer) bytes(t testing.TB, field string) []byte {
	t.Helper()
	s, ok := a.body[field].(string)
	require.True(t, ok, "field %s in %s", field, a.raw)
	b, err := base64.StdEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

type auditRow struct {
	Action    string
	Status    *int
	IP        *string
	UserAgent *string
	Context   string
}

func (h *harness) audit(user uuid.UUID) []auditRow {
	h.t.Helper()
	rows, err := h.db.Owner.Query(context.Background(), `SELECT action, http_status, host(ip_address), user_agent,
		coalesce(context::text, '') FROM auth.encryption_vault_audit WHERE user_id = $1 ORDER BY id`, user)
	require.NoError(h.t, err)
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		require.NoError(h.t, rows.Scan(&r.Action, &r.Status, &r.IP, &r.UserAgent, &r.Context))
		out = append(out, r)
	}
	require.NoError(h.t, rows.Err())
	return out
}

func recoveryBody(wrapped, iv []byte) string {
	return `{"recoveryWrappedMk":"` + b64(wrapped) + `","recoveryIv":"` + b64(iv) + `"}`
}

func TestHandlerRoutes(t *testing.T) {
	db := testutil.DB(t)
	h := newHarness(t, db.Runtime, db)
	assert.Equal(t, []string{"POST /init", "GET /key", "POST /rotate", "GET /status", "POST /recovery-wrap",
		"DELETE /recovery-wrap", "POST /zero-knowledge"}, h.h.(*vault.Handler).Routes())
	_, err := vault.NewHandler(nil, vault.HandlerOptions{})
	require.Error(t, err, "a nil service is a wiring bug")

	// Without UserFromRequest the user comes from token.Middleware's
	// claims: a request that did not pass it is refused, never served as
	// nobody (a default that read no claims would serve the vault of
	// uuid.Nil, or panic).
	plain, err := vault.NewHandler(h.svc, vault.HandlerOptions{})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	plain.ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "%s", rec.Body)
	assert.Contains(t, rec.Body.String(), `"UNAUTHORIZED"`)
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
}

func TestHandlerUnauthorized(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db.Runtime, db)
	for _, rt := range h.h.(*vault.Handler).Routes() {
		method, path, _ := strings.Cut(rt, " ")
		a := h.do(uuid.Nil, method, path, "")
		assert.Equal(t, http.StatusUnauthorized, a.status, rt)
		assert.Equal(t, "UNAUTHORIZED", a.code(), rt)
	}
	// A nil user with no error is refused too.
	nilUser, err := vault.NewHandler(h.svc, vault.HandlerOptions{
		UserFromRequest: func(*http.Request) (uuid.UUID, error) { return uuid.Nil, nil }})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	nilUser.ServeHTTP(rec, httptest.NewRequest("GET", "/key", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
}

func TestHandlerStandardLifecycle(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db.Runtime, db)
	u := newUser(t, db)

	// Before init.
	a := h.do(u, "GET", "/status", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.JSONEq(t, `{"vaultExists":false,"hasRecoveryWrap":false,"zeroKnowledge":false,"recoverySetAt":null}`, a.raw)
	a = h.do(u, "GET", "/key", "")
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.Equal(t, "VAULT_NOT_FOUND", a.code())
	a = h.do(u, "POST", "/rotate", "")
	assert.Equal(t, "VAULT_NOT_FOUND", a.code())
	a = h.do(u, "POST", "/recovery-wrap", recoveryBody(make([]byte, 48), make([]byte, 12)))
	assert.Equal(t, "VAULT_NOT_FOUND", a.code())
	a = h.do(u, "DELETE", "/recovery-wrap", "")
	assert.Equal(t, "VAULT_NOT_FOUND", a.code())
	a = h.do(u, "POST", "/zero-knowledge", `{"enable":true}`)
	assert.Equal(t, "VAULT_NOT_FOUND", a.code())

	// Init, idempotent; an empty body and {} both work.
	a = h.do(u, "POST", "/init", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
	mk := a.bytes(t, "masterKey")
	assert.Len(t, mk, 32)
	assert.Equal(t, "1", a.body["kekId"])
	assert.EqualValues(t, 1, a.body["formatVersion"])
	a = h.do(u, "POST", "/init", "{}")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, mk, a.bytes(t, "masterKey"), "init again returns the same key")
	a = h.do(u, "GET", "/key", "")
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, mk, a.bytes(t, "masterKey"))
	a = h.do(u, "GET", "/status", "")
	assert.JSONEq(t, `{"vaultExists":true,"hasRecoveryWrap":false,"zeroKnowledge":false,"recoverySetAt":null}`, a.raw)

	// Recovery wrap: validation, set, replace, clear.
	for _, body := range []string{
		recoveryBody(make([]byte, 47), make([]byte, 12)),
		recoveryBody(make([]byte, 48), make([]byte, 11)),
		`{"recoveryWrappedMk":"%%%","recoveryIv":"` + b64(make([]byte, 12)) + `"}`,
		`{}`,
	} {
		a = h.do(u, "POST", "/recovery-wrap", body)
		assert.Equal(t, http.StatusBadRequest, a.status, body)
		assert.Equal(t, "VALIDATION_FAILED", a.code(), body)
	}
	a = h.do(u, "POST", "/recovery-wrap", "")
	assert.Equal(t, "BAD_REQUEST", a.code(), "the body is required")
	a = h.do(u, "POST", "/recovery-wrap", "{")
	assert.Equal(t, "BAD_REQUEST", a.code())
	a = h.do(u, "POST", "/recovery-wrap", recoveryBody(bytes.Repeat([]byte{7}, 48), bytes.Repeat([]byte{8}, 12)))
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, true, a.body["hasRecoveryWrap"])
	assert.NotNil(t, a.body["recoverySetAt"])
	a = h.do(u, "DELETE", "/recovery-wrap", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.JSONEq(t, `{"vaultExists":true,"hasRecoveryWrap":false,"zeroKnowledge":false,"recoverySetAt":null}`, a.raw)
	a = h.do(u, "DELETE", "/recovery-wrap", "")
	require.Equal(t, http.StatusOK, a.status, "clearing twice is fine")

	// Enabling zero knowledge needs the recovery wrap.
	a = h.do(u, "POST", "/zero-knowledge", `{"enable":true}`)
	assert.Equal(t, http.StatusBadRequest, a.status)
	assert.Equal(t, "RECOVERY_WRAP_MISSING", a.code())

	// Rotate: a new key; the recovery wrap of the old key is wiped.
	h.do(u, "POST", "/recovery-wrap", recoveryBody(bytes.Repeat([]byte{7}, 48), bytes.Repeat([]byte{8}, 12)))
	a = h.do(u, "POST", "/rotate", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	mk2 := a.bytes(t, "masterKey")
	assert.NotEqual(t, mk, mk2)
	a = h.do(u, "GET", "/key", "")
	assert.Equal(t, mk2, a.bytes(t, "masterKey"))
	a = h.do(u, "GET", "/status", "")
	assert.Equal(t, false, a.body["hasRecoveryWrap"], "rotation wipes the recovery wrap")

	// The audit trail: every action but status, failures included, with
	// status, IP and user agent, and no key material.
	rows := h.audit(u)
	var actions []string
	for _, r := range rows {
		actions = append(actions, r.Action)
		require.NotNil(t, r.Status)
		require.NotNil(t, r.IP)
		assert.Equal(t, "192.0.2.7", *r.IP)
		require.NotNil(t, r.UserAgent)
		assert.Equal(t, "vault-test/1", *r.UserAgent)
		for _, k := range [][]byte{mk, mk2} {
			assert.NotContains(t, r.Context, b64(k))
			assert.NotContains(t, r.Context, base64.RawStdEncoding.EncodeToString(k[:24]))
		}
	}
	assert.Equal(t, []string{"key", "rotate", "recovery_set", "recovery_clear", "zk_enable",
		"init", "init", "key",
		"recovery_set", "recovery_set", "recovery_set", "recovery_set", "recovery_set", "recovery_set", "recovery_set",
		"recovery_clear", "recovery_clear", "zk_enable", "recovery_set", "rotate", "key"}, actions)
	statuses := map[string][]int{}
	for _, r := range rows {
		statuses[r.Action] = append(statuses[r.Action], *r.Status)
	}
	assert.Equal(t, []int{404, 200, 200}, statuses["key"])
	assert.Equal(t, []int{404, 200}, statuses["rotate"])
	assert.Equal(t, []int{404, 400, 400, 400, 400, 400, 400, 200, 200}, statuses["recovery_set"])
	assert.Equal(t, []int{404, 400}, statuses["zk_enable"])
	assert.Contains(t, rows[0].Context, "VAULT_NOT_FOUND")
}

func TestHandlerZeroKnowledge(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db.Runtime, db)
	u := newUser(t, db)
	a := h.do(u, "POST", "/init", "")
	mk := a.bytes(t, "masterKey")
	recWrapped, recIV := bytes.Repeat([]byte{7}, 48), bytes.Repeat([]byte{8}, 12)
	h.do(u, "POST", "/recovery-wrap", recoveryBody(recWrapped, recIV))

	a = h.do(u, "POST", "/zero-knowledge", `{"enable":true}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, true, a.body["zeroKnowledge"])
	a = h.do(u, "POST", "/zero-knowledge", `{"enable":true}`)
	require.Equal(t, http.StatusOK, a.status, "enabling twice is fine")
	var serverWrapGone bool
	require.NoError(t, db.Owner.QueryRow(context.Background(), `SELECT wrapped_mk IS NULL AND wrap_iv IS NULL AND kek_id IS NULL
		FROM auth.encryption_vaults WHERE user_id = $1`, u).Scan(&serverWrapGone))
	assert.True(t, serverWrapGone, "the server-wrapped copy is deleted")

	for _, path := range []string{"/key", "/init"} {
		method := "GET"
		if path == "/init" {
			method = "POST"
		}
		a = h.do(u, method, path, "")
		require.Equal(t, http.StatusOK, a.status, a.raw)
		assert.Equal(t, true, a.body["requiresRecoveryCode"], path)
		assert.Equal(t, recWrapped, a.bytes(t, "recoveryWrappedMk"), path)
		assert.Equal(t, recIV, a.bytes(t, "recoveryIv"), path)
		assert.NotContains(t, a.body, "masterKey", path)
		assert.EqualValues(t, 1, a.body["formatVersion"], path)
	}
	a = h.do(u, "POST", "/rotate", "")
	assert.Equal(t, http.StatusConflict, a.status)
	assert.Equal(t, "ZK_ROTATE_FORBIDDEN", a.code())
	a = h.do(u, "DELETE", "/recovery-wrap", "")
	assert.Equal(t, http.StatusConflict, a.status)
	assert.Equal(t, "ZK_ACTIVE", a.code())

	for _, body := range []string{
		`{"enable":false}`,
		`{"enable":false,"masterKey":"` + b64(mk[:31]) + `"}`,
		`{"enable":false,"masterKey":"` + b64(append(bytes.Clone(mk), 0)) + `"}`,
		`{"enable":false,"masterKey":"not base64"}`,
		`{}`,
	} {
		a = h.do(u, "POST", "/zero-knowledge", body)
		assert.Equal(t, "VALIDATION_FAILED", a.code(), body)
	}
	a = h.do(u, "POST", "/zero-knowledge", `{"enable":"yes"}`)
	assert.Equal(t, "BAD_REQUEST", a.code())

	a = h.do(u, "POST", "/zero-knowledge", `{"enable":false,"masterKey":"`+b64(mk)+`"}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, false, a.body["zeroKnowledge"])
	a = h.do(u, "GET", "/key", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, mk, a.bytes(t, "masterKey"), "the client's key is the vault key again")
	assert.Equal(t, "1", a.body["kekId"])
	a = h.do(u, "POST", "/zero-knowledge", `{"enable":false,"masterKey":"`+b64(make([]byte, 32))+`"}`)
	require.Equal(t, http.StatusOK, a.status, "disabling twice is fine")
	a = h.do(u, "GET", "/key", "")
	assert.Equal(t, mk, a.bytes(t, "masterKey"), "a second disable does not replace the key")

	for _, r := range h.audit(u) {
		assert.NotContains(t, r.Context, b64(mk))
	}
}

func TestServiceDisableZeroKnowledgeWipesTheKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	svc := newService(t, db.Runtime, nil)
	u := newUser(t, db)
	first, err := svc.Init(ctx, u, vault.Client{})
	require.NoError(t, err)
	mk := bytes.Clone(first.MasterKey)
	_, err = svc.SetRecoveryWrap(ctx, u, make([]byte, 48), make([]byte, 12), vault.Client{})
	require.NoError(t, err)
	_, err = svc.EnableZeroKnowledge(ctx, u, vault.Client{})
	require.NoError(t, err)

	wrong := bytes.Repeat([]byte{0x5a}, 32)
	_, err = svc.DisableZeroKnowledge(ctx, u, wrong, vault.Client{})
	require.ErrorIs(t, err, vault.ErrKeyMismatch)
	assert.Equal(t, make([]byte, 32), wrong, "zeroed when refused as not the vault's key")

	key := bytes.Clone(mk)
	st, err := svc.DisableZeroKnowledge(ctx, u, key, vault.Client{})
	require.NoError(t, err)
	assert.False(t, st.ZeroKnowledge)
	assert.Equal(t, make([]byte, 32), key, "the caller's buffer is zeroed")
	k, err := svc.Key(ctx, u, vault.Client{})
	require.NoError(t, err)
	assert.Equal(t, mk, k.MasterKey)

	short := bytes.Repeat([]byte{1}, 31)
	_, err = svc.DisableZeroKnowledge(ctx, u, short, vault.Client{})
	var ae *autherr.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, autherr.ValidationFailed, ae.Code)
	assert.Equal(t, make([]byte, 31), short, "zeroed on failure too")
}

func TestKeyThatDoesNotUnwrapIsInternal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	h := newHarness(t, db.Runtime, db)
	alice, bob := newUser(t, db), newUser(t, db)
	h.do(alice, "POST", "/init", "")
	h.do(bob, "POST", "/init", "")
	// Copy alice's wrap (IV and kek id included) into bob's row.
	_, err := db.Owner.Exec(ctx, `UPDATE auth.encryption_vaults b SET wrapped_mk = a.wrapped_mk, wrap_iv = a.wrap_iv,
		kek_id = a.kek_id FROM auth.encryption_vaults a WHERE a.user_id = $1 AND b.user_id = $2`, alice, bob)
	require.NoError(t, err)
	a := h.do(bob, "GET", "/key", "")
	assert.Equal(t, http.StatusInternalServerError, a.status)
	assert.Equal(t, "INTERNAL", a.code())
	assert.NotContains(t, a.raw, "unwrap", "the wire does not say why")
	a = h.do(alice, "GET", "/key", "")
	assert.Equal(t, http.StatusOK, a.status)
}

func TestHandlerDatabaseDownIsUnavailable(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	pool := db.Pool(t, true, nil)
	h := newHarness(t, pool, db)
	u := newUser(t, db)
	pool.Close()
	for _, rt := range []string{"GET /key", "GET /status", "POST /init"} {
		method, path, _ := strings.Cut(rt, " ")
		a := h.do(u, method, path, "")
		assert.Equal(t, http.StatusServiceUnavailable, a.status, "%s: %s", rt, a.raw)
	}
}
