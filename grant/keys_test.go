package grant_test

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/grant"
)

func publicPEM(t testing.TB, pub *rsa.PublicKey, typ string) []byte {
	t.Helper()
	var der []byte
	if typ == "RSA PUBLIC KEY" {
		der = x509.MarshalPKCS1PublicKey(pub)
	} else {
		var err error
		der, err = x509.MarshalPKIXPublicKey(pub)
		require.NoError(t, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePublicKeyPEM(t *testing.T) {
	t.Parallel()
	priv := privateKey(t, "rsa2048.pem")
	pkix := publicPEM(t, &priv.PublicKey, "PUBLIC KEY")
	pkcs1 := publicPEM(t, &priv.PublicKey, "RSA PUBLIC KEY")
	oneLine := []byte(strings.ReplaceAll(strings.TrimSpace(string(pkix)), "\n", `\n`))
	for name, in := range map[string][]byte{"PKIX": pkix, "PKCS#1": pkcs1, "one line with \\n": oneLine} {
		pub, err := grant.ParsePublicKeyPEM(in)
		require.NoError(t, err, name)
		assert.True(t, pub.Equal(&priv.PublicKey), name)
	}

	small1024, err := grant.ParsePrivateKeyPEM(readPEM(t, "rsa1024.pem"))
	require.Error(t, err, "a 1024-bit private key is refused")
	assert.Nil(t, small1024)
	block, _ := pem.Decode(readPEM(t, "rsa1024.pem"))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	pub1024 := &k.(*rsa.PrivateKey).PublicKey
	ed := ed25519.NewKeyFromSeed(make([]byte, 32))
	edDER, err := x509.MarshalPKIXPublicKey(ed.Public())
	require.NoError(t, err)
	for name, in := range map[string][]byte{
		"1024 bits PKIX":   publicPEM(t, pub1024, "PUBLIC KEY"),
		"1024 bits PKCS#1": publicPEM(t, pub1024, "RSA PUBLIC KEY"),
		"a private key":    readPEM(t, "rsa2048.pem"),
		"an Ed25519 key":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER}),
		"empty":            nil,
		"not PEM":          []byte("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
		"two blocks":       append(append([]byte{}, pkix...), pkix...),
		"certificate":      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
		"garbage DER":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
	} {
		pub, err := grant.ParsePublicKeyPEM(in)
		assert.Error(t, err, name)
		assert.Nil(t, pub, name)
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	t.Parallel()
	pkcs8 := readPEM(t, "rsa2048.pem")
	priv, err := grant.ParsePrivateKeyPEM(pkcs8)
	require.NoError(t, err)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})
	again, err := grant.ParsePrivateKeyPEM(pkcs1)
	require.NoError(t, err)
	assert.True(t, priv.Equal(again))

	for name, in := range map[string][]byte{
		"public key": publicPEM(t, &priv.PublicKey, "PUBLIC KEY"),
		"encrypted":  pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}),
		"1024 bits":  readPEM(t, "rsa1024.pem"),
		"empty":      nil,
	} {
		_, err := grant.ParsePrivateKeyPEM(in)
		assert.Error(t, err, name)
	}
}

func TestParseVerifyKeysPEM(t *testing.T) {
	t.Parallel()
	a, b := seedKey(1), seedKey(2)
	var all []byte
	for _, k := range []ed25519.PrivateKey{a, b} {
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		require.NoError(t, err)
		all = append(all, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	keys, err := grant.ParseVerifyKeysPEM(all)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	for i, k := range []ed25519.PrivateKey{a, b} {
		pub := k.Public().(ed25519.PublicKey)
		assert.True(t, pub.Equal(keys[i].Public))
		assert.Equal(t, grant.Thumbprint(pub), keys[i].ID)
	}

	privDER, err := x509.MarshalPKCS8PrivateKey(a)
	require.NoError(t, err)
	rsaPriv := privateKey(t, "rsa2048.pem")
	for name, in := range map[string][]byte{
		"the signing private key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		"an RSA key":              publicPEM(t, &rsaPriv.PublicKey, "PUBLIC KEY"),
		"nothing":                 []byte("  \n"),
		"trailing garbage":        append(append([]byte{}, all...), "junk"...),
	} {
		_, err := grant.ParseVerifyKeysPEM(in)
		assert.Error(t, err, name)
	}
}

// TestThumbprintIsTheServersKid: a static key configured from PEM matches
// the kid manaauth gives its signing key by default.
func TestThumbprintIsTheServersKid(t *testing.T) {
	t.Parallel()
	for _, seed := range []byte{1, 7, 200} {
		tok := newTokens(t, seed)
		_, kid := tok.Sign([]byte("x"))
		assert.Equal(t, kid, grant.Thumbprint(seedKey(seed).Public().(ed25519.PublicKey)))
	}
}

func TestStaticKeys(t *testing.T) {
	t.Parallel()
	a, b := seedKey(1).Public().(ed25519.PublicKey), seedKey(2).Public().(ed25519.PublicKey)
	_, err := grant.NewStaticKeys()
	assert.Error(t, err, "no keys")
	_, err = grant.NewStaticKeys(grant.VerifyKey{ID: "k", Public: a}, grant.VerifyKey{ID: "k", Public: b})
	assert.Error(t, err, "one kid, two keys")
	_, err = grant.NewStaticKeys(grant.VerifyKey{Public: a[:31]})
	assert.Error(t, err, "short key")
	s, err := grant.NewStaticKeys(grant.VerifyKey{ID: "k", Public: a}, grant.VerifyKey{Public: b}, grant.VerifyKey{ID: "k", Public: a})
	require.NoError(t, err)
	got, err := s.VerifyKey(t.Context(), "k")
	require.NoError(t, err)
	assert.True(t, a.Equal(got))
	got, err = s.VerifyKey(t.Context(), grant.Thumbprint(b))
	require.NoError(t, err)
	assert.True(t, b.Equal(got))
	_, err = s.VerifyKey(t.Context(), "nope")
	assert.ErrorIs(t, err, grant.ErrUnknownKey)
}
