package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/hkdf"

	"github.com/mana-how/mana-auth/grant"
	"github.com/mana-how/mana-auth/token"
)

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// server is the auth server's side: token keys and an issuer.
type server struct {
	tokens *token.Tokens
	issuer *grant.Issuer
	master []byte
	user   uuid.UUID
	pubPEM string // the token-signing public key, PKIX
}

func newServer(t *testing.T) *server {
	t.Helper()
	signing := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	tokens, err := token.New(token.Config{Issuer: "https://auth.example.test", Audience: "mana",
		Signing: token.SigningKey{Private: signing}})
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(signing.Public())
	require.NoError(t, err)
	priv, err := grant.ParsePrivateKeyPEM(readKey(t))
	require.NoError(t, err)
	s := &server{tokens: tokens, master: bytes.Repeat([]byte{9}, 32), user: uuid.New(),
		pubPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
	s.issuer, err = grant.NewIssuer(grant.IssuerConfig{PublicKey: &priv.PublicKey, Signer: tokens,
		Now:  func() time.Time { return testNow },
		Keys: grant.KeySourceFunc(func(context.Context, uuid.UUID) ([]byte, error) { return bytes.Clone(s.master), nil })})
	require.NoError(t, err)
	return s
}

func readKey(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../grant/testdata/rsa2048.pem")
	require.NoError(t, err)
	return b
}

func (s *server) grantJSON(t *testing.T, edit func(*grant.Grant)) []byte {
	t.Helper()
	g, err := s.issuer.Issue(context.Background(), grant.Request{UserID: s.user, MissionID: "mission-42"})
	require.NoError(t, err)
	if edit != nil {
		edit(g)
	}
	b, err := json.Marshal(g)
	require.NoError(t, err)
	return b
}

// exec runs the program in-process.
func execute(t *testing.T, env map[string]string, args []string, stdin []byte, now time.Time) (int, result, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), deps{args: args, getenv: func(k string) string { return env[k] },
		stdin: bytes.NewReader(stdin), stdout: &stdout, stderr: &stderr, now: func() time.Time { return now }})
	var res result
	if stdout.Len() > 0 {
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), "stdout %s", stdout.String())
	}
	return code, res, stderr.String()
}

func TestUnwrapsWithStaticKey(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	env := map[string]string{"MANA_AI_PRIVATE_KEY_PEM": string(readKey(t)), "MANA_AUTH_SIGNING_PUBLIC_KEY_PEM": s.pubPEM}
	data := s.grantJSON(t, nil)
	code, res, stderr := execute(t, env, nil, data, testNow)
	require.Equal(t, exitUnwrapped, code, stderr)
	assert.Equal(t, grant.OutcomeUnwrapped, res.Outcome)
	assert.Equal(t, s.user.String(), res.UserID)
	assert.Equal(t, "mission-42", res.MissionID)
	require.NotNil(t, res.ExpiresAt)
	assert.True(t, testNow.Add(grant.DefaultTTL).Equal(*res.ExpiresAt))

	// The fingerprint is of HKDF(master key, salt, context), recomputed here.
	var g grant.Grant
	require.NoError(t, json.Unmarshal(data, &g))
	want := make([]byte, 32)
	_, err := hkdf.New(sha256.New, s.master, mustB64(t, g.Derivation.Salt), []byte(g.Derivation.Info)).Read(want)
	require.NoError(t, err)
	sum := sha256.Sum256(want)
	assert.Equal(t, hex.EncodeToString(sum[:]), res.KeySHA256)

	// From a file, and with "-" for standard input.
	path := filepath.Join(t.TempDir(), "grant.json")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	code, res, _ = execute(t, env, []string{path}, nil, testNow)
	assert.Equal(t, exitUnwrapped, code)
	assert.Equal(t, grant.OutcomeUnwrapped, res.Outcome)
	code, _, _ = execute(t, env, []string{"-"}, data, testNow)
	assert.Equal(t, exitUnwrapped, code)
}

func TestUnwrapsWithJWKS(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	srv := httptest.NewServer(s.tokens.JWKSHandler())
	t.Cleanup(srv.Close)
	env := map[string]string{"MANA_AI_PRIVATE_KEY_PEM": string(readKey(t)), "MANA_AUTH_JWKS_URL": srv.URL}
	code, res, stderr := execute(t, env, nil, s.grantJSON(t, nil), testNow)
	require.Equal(t, exitUnwrapped, code, stderr)
	assert.Equal(t, grant.OutcomeUnwrapped, res.Outcome)

	// The key set unreachable: no verdict, exit 3.
	srv.Close()
	code, res, _ = execute(t, env, nil, s.grantJSON(t, nil), testNow)
	assert.Equal(t, exitUnavailable, code)
	assert.Equal(t, grant.OutcomeError, res.Outcome)
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	env := map[string]string{"MANA_AI_PRIVATE_KEY_PEM": string(readKey(t)), "MANA_AUTH_SIGNING_PUBLIC_KEY_PEM": s.pubPEM}
	cases := []struct {
		name   string
		env    map[string]string
		data   []byte
		now    time.Time
		reason grant.Reason
	}{
		{"edited mission", env, s.grantJSON(t, func(g *grant.Grant) { g.MissionID = "mission-43" }), testNow, grant.ReasonWrapRejected},
		{"expired", env, s.grantJSON(t, nil), testNow.Add(grant.DefaultTTL), grant.ReasonExpired},
		{"not JSON", env, []byte("hello"), testNow, grant.ReasonMalformed},
		{"empty input", env, nil, testNow, grant.ReasonMalformed},
		{"no private key", map[string]string{}, s.grantJSON(t, nil), testNow, grant.ReasonNotConfigured},
	}
	for _, tc := range cases {
		code, res, _ := execute(t, tc.env, nil, tc.data, tc.now)
		assert.Equal(t, exitRefused, code, tc.name)
		assert.Equal(t, grant.OutcomeRefused, res.Outcome, tc.name)
		assert.Equal(t, tc.reason, res.Reason, tc.name)
		assert.Empty(t, res.KeySHA256, tc.name)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	key := string(readKey(t))
	cases := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"two arguments", map[string]string{}, []string{"a", "b"}},
		{"no such file", map[string]string{}, []string{filepath.Join(t.TempDir(), "missing.json")}},
		{"private key without signing keys", map[string]string{"MANA_AI_PRIVATE_KEY_PEM": key}, nil},
		{"both key sources", map[string]string{"MANA_AI_PRIVATE_KEY_PEM": key, "MANA_AUTH_SIGNING_PUBLIC_KEY_PEM": s.pubPEM, "MANA_AUTH_JWKS_URL": "https://a/jwks"}, nil},
		{"bad private key", map[string]string{"MANA_AI_PRIVATE_KEY_PEM": "nope", "MANA_AUTH_SIGNING_PUBLIC_KEY_PEM": s.pubPEM}, nil},
		{"bad public key", map[string]string{"MANA_AI_PRIVATE_KEY_PEM": key, "MANA_AUTH_SIGNING_PUBLIC_KEY_PEM": "nope"}, nil},
		{"plain http JWKS", map[string]string{"MANA_AI_PRIVATE_KEY_PEM": key, "MANA_AUTH_JWKS_URL": "http://auth.example.com/jwks"}, nil},
	}
	for _, tc := range cases {
		code, res, stderr := execute(t, tc.env, tc.args, s.grantJSON(t, nil), testNow)
		assert.Equal(t, exitUsage, code, tc.name)
		assert.Zero(t, res, tc.name)
		assert.Contains(t, stderr, "mana-ai:", tc.name)
		assert.NotContains(t, stderr, "PRIVATE KEY-----\nMII", "%s: the key is not echoed", tc.name)
	}
}

// TestNoDatabaseDriver: the program embeds grant without a database driver.
func TestNoDatabaseDriver(t *testing.T) {
	goTool, err := exec.LookPath("go")
	require.NoError(t, err)
	out, err := exec.Command(goTool, "list", "-deps", "github.com/mana-how/mana-auth/examples/mana-ai").Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/mana-how/mana-auth/grant", "the real graph")
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		dep := sc.Text()
		assert.False(t, dep == "database/sql" || strings.HasPrefix(dep, "github.com/jackc/pgx") ||
			strings.HasPrefix(dep, "github.com/uptrace/bun"), "examples/mana-ai depends on %s", dep)
	}
	require.NoError(t, sc.Err())
	assert.True(t, slices.Contains(deps, "crypto/rsa"))
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	require.NoError(t, json.Unmarshal([]byte(`"`+s+`"`), &b))
	return b
}
