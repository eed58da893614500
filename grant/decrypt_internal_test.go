package grant

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type edSigner ed25519.PrivateKey

func (s edSigner) Sign(msg []byte) ([]byte, string) {
	k := ed25519.PrivateKey(s)
	return ed25519.Sign(k, msg), Thumbprint(k.Public().(ed25519.PublicKey))
}

// TestEveryDecryptionFailureDoesOneRSAOperation: however the ciphertext of
// an authentic grant is broken — not base64, short, long, or well-formed
// but wrong — Unwrap performs exactly one RSA private-key operation, on a
// ciphertext of the key's size, so that neither the error nor the work
// tells the cases apart. Authenticity failures do none.
func TestEveryDecryptionFailureDoesOneRSAOperation(t *testing.T) {
	t.Parallel()
	pemBytes, err := os.ReadFile("testdata/rsa2048.pem")
	require.NoError(t, err)
	priv, err := ParsePrivateKeyPEM(pemBytes)
	require.NoError(t, err)
	signer := edSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32)))
	keys, err := NewStaticKeys(VerifyKey{Public: ed25519.PrivateKey(signer).Public().(ed25519.PublicKey)})
	require.NoError(t, err)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u, err := NewUnwrapper(UnwrapperConfig{PrivateKey: priv, Keys: keys, Now: func() time.Time { return now }})
	require.NoError(t, err)
	var calls, sizes []int
	u.decrypt = func(p *rsa.PrivateKey, ct, label []byte) ([]byte, error) {
		calls = append(calls, 1)
		sizes = append(sizes, len(ct))
		return decryptOAEP(p, ct, label)
	}
	iss, err := NewIssuer(IssuerConfig{PublicKey: &priv.PublicKey, Signer: signer, Now: func() time.Time { return now },
		Keys: KeySourceFunc(func(context.Context, uuid.UUID) ([]byte, error) { return make([]byte, 32), nil })})
	require.NoError(t, err)

	resign := func(g *Grant) {
		label := Label(g.UserID, g.MissionID, g.ExpiresAt)
		sig, kid := signer.Sign(SignedMessage(label, g.Derivation.Salt, g.WrappedKey))
		g.Signature, g.SignatureKID = base64.StdEncoding.EncodeToString(sig), kid
	}
	random := make([]byte, priv.Size())
	_, err = rand.Read(random)
	require.NoError(t, err)
	random[0] = 0
	cases := []struct {
		name   string
		edit   func(g *Grant)
		resign bool
		rsaOps int
	}{
		{"valid", func(*Grant) {}, false, 1},
		{"not base64", func(g *Grant) { g.WrappedKey = "!!" }, true, 1},
		{"short", func(g *Grant) { g.WrappedKey = g.WrappedKey[:len(g.WrappedKey)-8] }, true, 1},
		{"empty ciphertext, padded", func(g *Grant) { g.WrappedKey = "AA==" }, true, 1},
		{"long", func(g *Grant) { g.WrappedKey += "AAAA" }, true, 1},
		{"random", func(g *Grant) { g.WrappedKey = base64.StdEncoding.EncodeToString(random) }, true, 1},
		{"bad salt", func(g *Grant) { g.Derivation.Salt = "AAAA" }, true, 1},
		{"bad signature", func(g *Grant) { g.WrappedKey = base64.StdEncoding.EncodeToString(random) }, false, 0},
		{"edited user", func(g *Grant) { g.UserID = uuid.NewString() }, false, 0},
		{"expired", func(g *Grant) { g.ExpiresAt = now }, true, 0},
	}
	for _, tc := range cases {
		g, err := iss.Issue(context.Background(), Request{UserID: uuid.New(), MissionID: "m"})
		require.NoError(t, err)
		tc.edit(g)
		if tc.resign {
			resign(g)
		}
		calls, sizes = nil, nil
		_, err = u.Unwrap(context.Background(), g)
		assert.Len(t, calls, tc.rsaOps, tc.name)
		for _, n := range sizes {
			assert.Equal(t, priv.Size(), n, "%s: the RSA operation ran on a ciphertext of the key's size", tc.name)
		}
		if tc.name == "valid" {
			assert.NoError(t, err)
		} else {
			assert.Error(t, err, tc.name)
		}
	}
}
