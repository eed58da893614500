package passkey_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/gdpr"
	"github.com/mana-how/mana-auth/passkey"
)

// TestDataExport: the GDPR sections of a user with a passkey and a
// challenge hold them — name, credential id, dates — and never the public
// key; another user's rows are not in them. Negative control: adding
// public_key to the column list fails the leak check.
func TestDataExport(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "export@example.com")
	other := p.user(t, "other@example.com")
	k := newSoftKey(u.id)
	pk := p.register(t, u.access, k, "Laptop")
	p.register(t, other.access, newSoftKey(other.id))
	p.registerOptions(t, u.access) // an open challenge

	ctx := context.Background()
	var buf bytes.Buffer
	w := gdpr.NewWriter(&buf)
	tx, err := p.DB.Runtime.Begin(ctx)
	require.NoError(t, err)
	defer func() { require.NoError(t, tx.Rollback(ctx)) }()
	require.NoError(t, passkey.Data{}.ExportData(ctx, tx, gdpr.Subject{UserID: u.id}, w))
	require.NoError(t, w.Flush())
	assert.Equal(t, []string{"auth.passkeys", "auth.passkey_challenges"}, w.Sections())

	var sections map[string][]map[string]any
	require.NoError(t, json.Unmarshal([]byte("{"+buf.String()+"}"), &sections), buf.String())
	require.Len(t, sections["auth.passkeys"], 1, "only the subject's")
	row := sections["auth.passkeys"][0]
	assert.Equal(t, pk.ID.String(), row["id"])
	assert.Equal(t, "Laptop", row["name"])
	assert.Equal(t, base64.StdEncoding.EncodeToString(k.cred.ID), row["credential_id"])
	assert.NotContains(t, row, "public_key")
	assert.Len(t, sections["auth.passkey_challenges"], 2, "the registration's, spent, and the open one")
	for _, c := range sections["auth.passkey_challenges"] {
		assert.Equal(t, "register", c["ceremony"])
		assert.NotContains(t, c, "session")
	}

	var pub []byte
	require.NoError(t, p.DB.Owner.QueryRow(ctx, `SELECT public_key FROM auth.passkeys WHERE id = $1`, pk.ID).Scan(&pub))
	for _, form := range []string{hex.EncodeToString(pub), base64.StdEncoding.EncodeToString(pub), base64.RawURLEncoding.EncodeToString(pub)} {
		assert.NotContains(t, buf.String(), form, "the public key is not exported")
	}
	require.NoError(t, passkey.Data{}.EraseData(ctx, tx, gdpr.Subject{UserID: u.id}))
}
