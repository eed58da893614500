package vault_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/vault"
)

// wantKeyCheck is the key check value as doc.go defines it, computed here
// independently of the package.
func wantKeyCheck(mk []byte) []byte {
	m := hmac.New(sha256.New, mk)
	m.Write([]byte("mana-auth vault key check v1"))
	return m.Sum(nil)[:16]
}

// storedKeyCheck reads key_check as the owner (nil when NULL).
func storedKeyCheck(t testing.TB, db *testutil.Database, u uuid.UUID) []byte {
	t.Helper()
	var kc []byte
	require.NoError(t, db.Owner.QueryRow(context.Background(),
		`SELECT key_check FROM auth.encryption_vaults WHERE user_id = $1`, u).Scan(&kc))
	return kc
}

// vaultRow is the whole stored row as text, to show that nothing changed.
func vaultRow(t testing.TB, db *testutil.Database, u uuid.UUID) string {
	t.Helper()
	var s string
	require.NoError(t, db.Owner.QueryRow(context.Background(),
		`SELECT to_jsonb(v)::text FROM auth.encryption_vaults v WHERE user_id = $1`, u).Scan(&s))
	return s
}

// zkVault makes a vault for a new user, with a recovery wrap, in
// zero-knowledge mode, through the handler; it returns the user and the key.
func zkVault(t testing.TB, h *harness) (uuid.UUID, []byte) {
	t.Helper()
	u := newUser(t, h.db)
	a := h.do(u, "POST", "/init", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	mk := a.bytes(t, "masterKey")
	a = h.do(u, "POST", "/recovery-wrap", recoveryBody(bytes.Repeat([]byte{7}, 48), bytes.Repeat([]byte{8}, 12)))
	require.Equal(t, http.StatusOK, a.status, a.raw)
	a = h.do(u, "POST", "/zero-knowledge", `{"enable":true}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	return u, mk
}

func TestDisableZeroKnowledgeRefusesAWrongKey(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db.Runtime, db)
	u, mk := zkVault(t, h)

	// Enabling stored the check value: 16 bytes of the HMAC, never the
	// key or a piece of it.
	kc := storedKeyCheck(t, db, u)
	require.Len(t, kc, vault.KeyCheckSize)
	assert.Equal(t, wantKeyCheck(mk), kc)
	assert.NotEqual(t, mk[:16], kc)
	assert.NotEqual(t, mk[16:], kc)
	assert.False(t, bytes.Contains(mk, kc), "the check value is part of the key")
	a := h.do(u, "POST", "/zero-knowledge", `{"enable":true}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, kc, storedKeyCheck(t, db, u), "enabling again keeps the check value")

	zkKey := h.do(u, "GET", "/key", "")
	require.Equal(t, http.StatusOK, zkKey.status, zkKey.raw)
	require.Equal(t, true, zkKey.body["requiresRecoveryCode"])
	before := vaultRow(t, db, u)

	wrongKeys := map[string][]byte{
		"zeros":           make([]byte, 32),
		"one bit flipped": append([]byte{mk[0] ^ 1}, mk[1:]...),
		"the check value": append(bytes.Clone(kc), kc...),
	}
	for name, wrong := range wrongKeys {
		a := h.do(u, "POST", "/zero-knowledge", `{"enable":false,"masterKey":"`+b64(wrong)+`"}`)
		require.Equal(t, http.StatusBadRequest, a.status, "%s: %s", name, a.raw)
		assert.Equal(t, "VALIDATION_FAILED", a.code(), name)
		e := a.body["error"].(map[string]any)
		assert.Equal(t, map[string]any{"fields": map[string]any{"masterKey": "does not match the key of this vault"}},
			e["details"], name)

		// Nothing changed: still zero knowledge, the same row, the same
		// answer of GET /key.
		assert.Equal(t, before, vaultRow(t, db, u), name)
		st := h.do(u, "GET", "/status", "")
		assert.Equal(t, true, st.body["zeroKnowledge"], name)
		k := h.do(u, "GET", "/key", "")
		require.Equal(t, http.StatusOK, k.status, k.raw)
		assert.Equal(t, zkKey.raw, k.raw, name)
		assert.NotContains(t, k.body, "masterKey", name)
	}

	// The service says why, for callers that branch on it.
	_, err := h.svc.DisableZeroKnowledge(context.Background(), u, bytes.Repeat([]byte{1}, 32), vault.Client{})
	require.ErrorIs(t, err, vault.ErrKeyMismatch)
	assert.Equal(t, autherr.ValidationFailed, autherr.CodeOf(err))

	// The right key: accepted, the server holds it again, the check value
	// goes with the mode.
	a = h.do(u, "POST", "/zero-knowledge", `{"enable":false,"masterKey":"`+b64(mk)+`"}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, false, a.body["zeroKnowledge"])
	a = h.do(u, "GET", "/key", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, mk, a.bytes(t, "masterKey"))
	assert.Nil(t, storedKeyCheck(t, db, u), "key_check cleared with the mode")

	// The audit trail: each refusal a zk_disable failure marked as a key
	// mismatch, the success marked as checked; neither the key nor the
	// check value in any row.
	var refused, accepted int
	for _, r := range h.audit(u) {
		for _, secret := range [][]byte{mk, kc} {
			assert.NotContains(t, r.Context, b64(secret))
			assert.NotContains(t, r.Context, hex.EncodeToString(secret))
		}
		if r.Action != "zk_disable" {
			continue
		}
		require.NotNil(t, r.Status)
		switch *r.Status {
		case http.StatusBadRequest:
			refused++
			assert.JSONEq(t, `{"code":"VALIDATION_FAILED","keyMismatch":true}`, r.Context)
		case http.StatusOK:
			accepted++
			assert.JSONEq(t, `{"alreadyDisabled":false,"kekId":"1","keyChecked":true}`, r.Context)
		default:
			t.Errorf("zk_disable audited with status %d", *r.Status)
		}
	}
	assert.Equal(t, len(wrongKeys)+1, refused)
	assert.Equal(t, 1, accepted)
}

// TestDisableZeroKnowledgeWithoutKeyCheck: a row switched on before
// migration 0002 has no check value and keeps the old behaviour (any
// 32-byte key is taken), recorded in the audit row.
func TestDisableZeroKnowledgeWithoutKeyCheck(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db.Runtime, db)
	u, mk := zkVault(t, h)
	_, err := db.Owner.Exec(context.Background(), `UPDATE auth.encryption_vaults SET key_check = NULL WHERE user_id = $1`, u)
	require.NoError(t, err)

	other := bytes.Repeat([]byte{0x5a}, 32)
	require.NotEqual(t, mk, other)
	a := h.do(u, "POST", "/zero-knowledge", `{"enable":false,"masterKey":"`+b64(other)+`"}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	a = h.do(u, "GET", "/key", "")
	assert.Equal(t, other, a.bytes(t, "masterKey"))
	rows := h.audit(u)
	last := rows[len(rows)-2] // the key read above is the last
	assert.Equal(t, "zk_disable", last.Action)
	assert.JSONEq(t, `{"alreadyDisabled":false,"kekId":"1","keyChecked":false}`, last.Context)
}

// TestEnableZeroKnowledgeNeedsAKeyThatUnwraps: without the key there is no
// check value, so the mode stays off and the answer is INTERNAL.
func TestEnableZeroKnowledgeNeedsAKeyThatUnwraps(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db.Runtime, db)
	u := newUser(t, db)
	require.Equal(t, http.StatusOK, h.do(u, "POST", "/init", "").status)
	require.Equal(t, http.StatusOK, h.do(u, "POST", "/recovery-wrap",
		recoveryBody(bytes.Repeat([]byte{7}, 48), bytes.Repeat([]byte{8}, 12))).status)
	_, err := db.Owner.Exec(context.Background(), `UPDATE auth.encryption_vaults
		SET wrapped_mk = set_byte(wrapped_mk, 0, get_byte(wrapped_mk, 0) # 1) WHERE user_id = $1`, u)
	require.NoError(t, err)
	before := vaultRow(t, db, u)

	a := h.do(u, "POST", "/zero-knowledge", `{"enable":true}`)
	assert.Equal(t, http.StatusInternalServerError, a.status, a.raw)
	assert.Equal(t, "INTERNAL", a.code())
	assert.Equal(t, before, vaultRow(t, db, u), "the mode stays off, the row as it was")
}
