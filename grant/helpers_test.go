package grant_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/grant"
	"github.com/mana-how/mana-auth/token"
)

// testNow is the fake clock's start: whole seconds, UTC.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// clock is a settable fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// readPEM reads a test key from testdata.
func readPEM(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func privateKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := grant.ParsePrivateKeyPEM(readPEM(t, name))
	require.NoError(t, err)
	return k
}

// seedKey is a deterministic Ed25519 key.
func seedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

// newTokens is the auth server's token service with a fixed signing key.
func newTokens(t testing.TB, seed byte) *token.Tokens {
	t.Helper()
	tok, err := token.New(token.Config{Issuer: "https://auth.example.test", Audience: "mana",
		Signing: token.SigningKey{Private: seedKey(seed)}})
	require.NoError(t, err)
	return tok
}

// masterKeys is a KeySource over a map; users missing from it have no
// vault, users in zk are in zero-knowledge mode. calls counts reads.
type masterKeys struct {
	mu    sync.Mutex
	keys  map[uuid.UUID][]byte
	zk    map[uuid.UUID]bool
	err   error // returned for every user when set
	calls int
}

func (m *masterKeys) MasterKey(_ context.Context, id uuid.UUID) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	switch {
	case m.err != nil:
		return nil, m.err
	case m.zk[id]:
		return nil, autherr.New(autherr.ZKActive, "")
	}
	k, ok := m.keys[id]
	if !ok {
		return nil, autherr.New(autherr.VaultNotFound, "")
	}
	return bytes.Clone(k), nil
}

// recorder is an EventLogger that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []grant.Event
}

func (r *recorder) GrantIssued(_ context.Context, e grant.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// fixture is an issuer and an unwrapper that fit together.
type fixture struct {
	clock     *clock
	tokens    *token.Tokens
	keys      *masterKeys
	events    *recorder
	issuer    *grant.Issuer
	unwrapper *grant.Unwrapper
	priv      *rsa.PrivateKey
	user      uuid.UUID
	master    []byte
}

type fixtureOpts struct {
	rsaKey  string // testdata file; "" means rsa2048.pem
	auditor grant.Auditor
}

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	if o.rsaKey == "" {
		o.rsaKey = "rsa2048.pem"
	}
	f := &fixture{clock: newClock(testNow), tokens: newTokens(t, 7), events: &recorder{},
		user: uuid.MustParse("0b6f1d1e-8a4c-4e53-9a43-4f0d2b8f6c11"), master: bytes.Repeat([]byte{0x42}, 32)}
	f.keys = &masterKeys{keys: map[uuid.UUID][]byte{f.user: f.master}, zk: map[uuid.UUID]bool{}}
	f.priv = privateKey(t, o.rsaKey)
	var err error
	f.issuer, err = grant.NewIssuer(grant.IssuerConfig{PublicKey: &f.priv.PublicKey, Keys: f.keys, Signer: f.tokens,
		Events: f.events, Now: f.clock.Now})
	require.NoError(t, err)
	f.unwrapper = f.newUnwrapper(t, f.priv, o.auditor)
	return f
}

// serverKeys are the verification keys of the fixture's token service, as
// the AI side would configure them from a PEM.
func (f *fixture) serverKeys(t testing.TB) *grant.StaticKeys {
	t.Helper()
	_, kid := f.tokens.Sign(nil)
	pub, ok := f.tokens.PublicKey(kid)
	require.True(t, ok)
	keys, err := grant.NewStaticKeys(grant.VerifyKey{Public: pub})
	require.NoError(t, err)
	return keys
}

func (f *fixture) newUnwrapper(t testing.TB, priv *rsa.PrivateKey, auditor grant.Auditor) *grant.Unwrapper {
	t.Helper()
	u, err := grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKey: priv, Keys: f.serverKeys(t), Auditor: auditor,
		Now: f.clock.Now})
	require.NoError(t, err)
	return u
}

func (f *fixture) issue(t testing.TB, missionID string, ttl time.Duration) *grant.Grant {
	t.Helper()
	g, err := f.issuer.Issue(context.Background(), grant.Request{UserID: f.user, MissionID: missionID, TTL: ttl})
	require.NoError(t, err)
	return g
}

// resign signs g again with the server's key, as it stands: for grants
// whose decryption path is under test.
func (f *fixture) resign(g *grant.Grant) {
	resignWith(g, f.tokens)
}

func resignWith(g *grant.Grant, s grant.Signer) {
	label := grant.Label(g.UserID, g.MissionID, g.ExpiresAt)
	sig, kid := s.Sign(grant.SignedMessage(label, g.Derivation.Salt, g.WrappedKey))
	g.Signature, g.SignatureKID = b64(sig), kid
}

// edSigner signs with a bare Ed25519 key under a chosen kid.
type edSigner struct {
	key ed25519.PrivateKey
	kid string
}

func (s edSigner) Sign(msg []byte) ([]byte, string) { return ed25519.Sign(s.key, msg), s.kid }

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// requireReason checks that err is a refusal with the given reason.
func requireReason(t testing.TB, err error, want grant.Reason, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	var f *grant.Failure
	require.ErrorAs(t, err, &f, msgAndArgs...)
	require.Equal(t, want, f.Reason, msgAndArgs...)
}
