package passkey_test

// Helpers of the passkey tests: the account stack of authtest with the
// passkey service mounted as the reference server mounts it, and a
// software authenticator (github.com/descope/virtualwebauthn) that plays
// the browser and the authenticator over real HTTP.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	vw "github.com/descope/virtualwebauthn"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/internal/passkeytest"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/passkey"
	"github.com/mana-how/mana-auth/token"
)

const (
	pkPrefix = "/api/v1/auth/passkeys"
	pkRPID   = "app.test.example"
	pkOrigin = "https://app.test.example"
)

// icloud is the AAGUID of iCloud Keychain, which the test authenticator
// claims to be, so that new passkeys get a name from the table.
var icloud = uuid.MustParse("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")

// pkFixture is one account stack with the passkey service on it.
type pkFixture struct {
	*authtest.Fixture
	svc   *passkey.Service
	live  *token.LiveSessions
	proxy *testutil.Proxy
}

type pkOptions struct {
	uv           protocol.UserVerificationRequirement
	secondFactor manaauth.SecondFactor
	limits       passkey.Limits
	mailer       mail.Mailer // nil: the fixture's SMTP mailer
	// viaProxy: the passkey service's pool goes through a proxy the test
	// can cut (pkFixture.proxy); the account stack keeps its own.
	viaProxy bool
	// execMode, when set, is the passkey service's pool's pgx exec mode.
	execMode pgx.QueryExecMode
}

func newPkFixture(t testing.TB, o pkOptions) *pkFixture {
	t.Helper()
	p := &pkFixture{}
	p.Fixture = authtest.New(t, authtest.Options{SecondFactor: o.secondFactor,
		Mount: func(f *authtest.Fixture, mux *http.ServeMux) { p.mount(t, f, mux, o) }})
	return p
}

// peer is a second instance on p's database (its own account service,
// signing key and passkey service, the same clock): what a second replica
// behind a load balancer is.
func (p *pkFixture) peer(t testing.TB, o pkOptions) *pkFixture {
	t.Helper()
	q := &pkFixture{}
	q.Fixture = p.Fixture.Peer(t, authtest.Options{SecondFactor: o.secondFactor,
		Mount: func(f *authtest.Fixture, mux *http.ServeMux) { q.mount(t, f, mux, o) }})
	return q
}

func (p *pkFixture) mount(t testing.TB, f *authtest.Fixture, mux *http.ServeMux, o pkOptions) {
	t.Helper()
	pool := f.Pool
	mailer := f.Mailer
	if o.mailer != nil {
		mailer = o.mailer
	}
	if o.viaProxy {
		p.proxy = testutil.NewProxy(t, testutil.ServerAddr(t))
		pool = testutil.OpenPool(t, p.proxy.URL(f.DB.RuntimeURL))
	}
	if o.execMode != 0 {
		pool = f.DB.Pool(t, true, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = o.execMode })
	}
	// The service and handler log to a buffer shown when the test fails.
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("passkey log:\n%s", logs)
		}
	})
	var err error
	p.live, err = token.NewLiveSessions(token.LiveSessionsConfig{Checker: f.Auth, Now: f.Clock.Now})
	require.NoError(t, err)
	p.svc, err = passkey.New(passkey.Config{Accounts: f.Auth, Pool: pool, RPID: pkRPID, RPName: "Mana test",
		Origins: []string{pkOrigin}, Mailer: mailer, DecoyKey: testDecoyKey, UserVerification: o.uv,
		Limits: o.limits, Now: f.Clock.Now, Logger: logger, Registerer: f.Registry})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.svc.Close()) })
	h, err := passkey.NewHandler(p.svc, passkey.HandlerOptions{Tokens: f.Tokens, Live: p.live, Logger: logger})
	require.NoError(t, err)
	mux.Handle(pkPrefix+"/", http.StripPrefix(pkPrefix, h))
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testDecoyKey is shared by every instance of a test, as DecoyKey must be.
var testDecoyKey = func() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}()

// pkUser is a signed-in account.
type pkUser struct {
	id      uuid.UUID
	email   string
	access  string
	refresh string
}

func (p *pkFixture) user(t testing.TB, email string) pkUser {
	t.Helper()
	id := p.SignUp(t, email, authtest.StrongPassword)
	access, refresh := p.Login(t, email, authtest.StrongPassword)
	return pkUser{id: uuid.MustParse(id), email: email, access: access, refresh: refresh}
}

// softKey is a software authenticator holding one credential, and the
// browser in front of it: rp is what the browser reports (its origin) and
// what the authenticator hashes (the RP ID).
type softKey struct {
	rp   vw.RelyingParty
	auth vw.Authenticator
	cred vw.Credential
	// transports, when set, are added to the attestation response as a
	// browser adds them.
	transports []string
}

// newSoftKey is an authenticator that verifies its user, whose
// credentials carry userID as their user handle, and that says it is
// iCloud Keychain.
func newSoftKey(userID uuid.UUID) *softKey {
	auth := vw.NewAuthenticatorWithOptions(vw.AuthenticatorOptions{UserHandle: userID[:]})
	copy(auth.Aaguid[:], icloud[:])
	cred := newCredential()
	auth.AddCredential(cred)
	return &softKey{rp: vw.RelyingParty{ID: pkRPID, Name: "Mana test", Origin: pkOrigin}, auth: auth, cred: cred}
}

// newCredential is a virtualwebauthn credential with a P-256 key whose
// coordinates are both 32 bytes long. virtualwebauthn writes them with
// big.Int.Bytes, which drops leading zero bytes, and go-webauthn rightly
// refuses a COSE EC2 key whose x or y is shorter than the field (RFC 9053
// 7.1.1): about one key in 128 would fail a registration at random.
func newCredential() vw.Credential {
	return passkeytest.Credential()
}

// create answers creation options (the "options" of /register/options).
func (k *softKey) create(t testing.TB, options json.RawMessage) json.RawMessage {
	t.Helper()
	o, err := vw.ParseAttestationOptions(string(options))
	require.NoError(t, err)
	out := json.RawMessage(vw.CreateAttestationResponse(k.rp, k.auth, k.cred, *o))
	if len(k.transports) > 0 {
		var m map[string]any
		require.NoError(t, json.Unmarshal(out, &m))
		m["response"].(map[string]any)["transports"] = k.transports
		b, err := json.Marshal(m)
		require.NoError(t, err)
		out = b
	}
	return out
}

// get answers request options (the "options" of /authenticate/options),
// counting the signature up by one as authenticators with a counter do.
func (k *softKey) get(t testing.TB, options json.RawMessage) json.RawMessage {
	t.Helper()
	o, err := vw.ParseAssertionOptions(string(options))
	require.NoError(t, err)
	k.cred.Counter++
	return json.RawMessage(vw.CreateAssertionResponse(k.rp, k.auth, k.cred, *o))
}

// ceremony is an options answer.
type ceremony struct {
	ChallengeID string          `json:"challengeId"`
	Options     json.RawMessage `json:"options"`
}

func decodeAs[T any](t testing.TB, body map[string]any) T {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "%s", b)
	return v
}

func (p *pkFixture) registerOptions(t testing.TB, access string) ceremony {
	t.Helper()
	st, body, _ := p.Call(t, "POST", pkPrefix+"/register/options", nil, authtest.Bearer(access))
	require.Equal(t, http.StatusOK, st, "register options: %v", body)
	return decodeAs[ceremony](t, body)
}

// pkPasskey is a passkey of an answer.
type pkPasskey struct {
	ID         uuid.UUID `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  string    `json:"createdAt"`
	LastUsedAt *string   `json:"lastUsedAt"`
	Transports []string  `json:"transports"`
	AAGUID     uuid.UUID `json:"aaguid"`
}

// register adds k's credential to the account of access.
func (p *pkFixture) register(t testing.TB, access string, k *softKey, name ...string) pkPasskey {
	t.Helper()
	c := p.registerOptions(t, access)
	body := map[string]any{"challengeId": c.ChallengeID, "credential": k.create(t, c.Options)}
	if len(name) > 0 {
		body["name"] = name[0]
	}
	st, out, _ := p.Call(t, "POST", pkPrefix+"/register/verify", body, authtest.Bearer(access))
	require.Equal(t, http.StatusCreated, st, "register verify: %v", out)
	return decodeAs[struct {
		Passkey pkPasskey `json:"passkey"`
	}](t, out).Passkey
}

// signInOptions asks for sign-in options, for email or (email "")
// usernameless.
func (p *pkFixture) signInOptions(t testing.TB, email string) ceremony {
	t.Helper()
	var body any
	if email != "" {
		body = map[string]any{"email": email}
	}
	st, out, _ := p.Call(t, "POST", pkPrefix+"/authenticate/options", body, nil)
	require.Equal(t, http.StatusOK, st, "sign-in options: %v", out)
	return decodeAs[ceremony](t, out)
}

func (p *pkFixture) verify(t testing.TB, challengeID string, credential json.RawMessage) (int, map[string]any, *http.Response) {
	t.Helper()
	return p.Call(t, "POST", pkPrefix+"/authenticate/verify", map[string]any{"challengeId": challengeID, "credential": credential}, nil)
}

// signIn runs a whole sign-in with k and requires the token pair.
func (p *pkFixture) signIn(t testing.TB, email string, k *softKey) map[string]any {
	t.Helper()
	c := p.signInOptions(t, email)
	st, body, _ := p.verify(t, c.ChallengeID, k.get(t, c.Options))
	require.Equal(t, http.StatusOK, st, "sign in: %v", body)
	require.NotEmpty(t, body["accessToken"], "sign in answered no tokens: %v", body)
	return body
}

// signCount is the stored counter of a credential.
func (p *pkFixture) signCount(t testing.TB, id uuid.UUID) int {
	t.Helper()
	return p.OwnerInt(t, `SELECT sign_count FROM auth.passkeys WHERE id = $1`, id)
}

// sessions counts the user's sessions.
func (p *pkFixture) sessions(t testing.TB, userID uuid.UUID) int {
	t.Helper()
	return p.OwnerInt(t, `SELECT count(*) FROM auth.sessions WHERE user_id = $1`, userID)
}

// spent tells whether a challenge was used.
func (p *pkFixture) spent(t testing.TB, challengeID string) bool {
	t.Helper()
	return p.OwnerInt(t, `SELECT count(*) FROM auth.passkey_challenges WHERE id = $1 AND used_at IS NOT NULL`, challengeID) == 1
}

// events counts the user's security events of a type.
func (p *pkFixture) events(t testing.TB, userID uuid.UUID, typ string) int {
	t.Helper()
	return p.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE user_id = $1 AND event_type = $2`, userID, typ)
}
