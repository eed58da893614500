package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	vw "github.com/descope/virtualwebauthn"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/passkeytest"
)

// The passkey group of TestAuthEndToEnd drives /api/v1/auth/passkeys as
// run mounts it, with a software authenticator (virtualwebauthn) playing
// the browser and the authenticator. The group's server runs on an https
// base URL, so passkeys are on; the group also starts a server on the
// default base URL (http on a host other than localhost, where browsers
// offer no WebAuthn): there the capability says false and the other
// routes answer 404. 3 password operations.

const e2eSecureBaseURL = "https://auth.example.test"

func passkeysPath(p string) string { return passkeysPrefix + p }

type e2ePasskey struct {
	ID         uuid.UUID `json:"id"`
	Name       string    `json:"name"`
	LastUsedAt *string   `json:"lastUsedAt"`
	Transports []string  `json:"transports"`
	AAGUID     uuid.UUID `json:"aaguid"`
}

type e2eCeremony struct {
	ChallengeID string          `json:"challengeId"`
	Options     json.RawMessage `json:"options"`
}

// googlePasswordManager is the AAGUID the test authenticator reports.
var googlePasswordManager = uuid.MustParse("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4")

// e2eAuthenticator is a software authenticator with one credential, whose
// user handle is userID, behind a browser on the server's origin.
type e2eAuthenticator struct {
	rp   vw.RelyingParty
	auth vw.Authenticator
	cred vw.Credential
}

func newE2EAuthenticator(userID uuid.UUID) *e2eAuthenticator {
	a := &e2eAuthenticator{
		rp:   vw.RelyingParty{ID: "auth.example.test", Name: "mana", Origin: e2eSecureBaseURL},
		auth: vw.NewAuthenticatorWithOptions(vw.AuthenticatorOptions{UserHandle: userID[:]}),
		cred: passkeytest.Credential(),
	}
	copy(a.auth.Aaguid[:], googlePasswordManager[:])
	return a
}

func (a *e2eAuthenticator) create(t *testing.T, options json.RawMessage) json.RawMessage {
	t.Helper()
	o, err := vw.ParseAttestationOptions(string(options))
	require.NoError(t, err)
	return json.RawMessage(vw.CreateAttestationResponse(a.rp, a.auth, a.cred, *o))
}

func (a *e2eAuthenticator) get(t *testing.T, options json.RawMessage) json.RawMessage {
	t.Helper()
	o, err := vw.ParseAssertionOptions(string(options))
	require.NoError(t, err)
	a.cred.Counter++
	return json.RawMessage(vw.CreateAssertionResponse(a.rp, a.auth, a.cred, *o))
}

// signInWithPasskey runs a sign-in (email "" for usernameless) and
// returns the pair.
func (f *e2eServer) signInWithPasskey(a *e2eAuthenticator, email string) e2ePair {
	f.t.Helper()
	var body any
	if email != "" {
		body = map[string]any{"email": email}
	}
	c := decodeJSON[e2eCeremony](f.t, f.expect(200, "POST", passkeysPath("/authenticate/options"), body).body)
	r := f.expect(200, "POST", passkeysPath("/authenticate/verify"),
		map[string]any{"challengeId": c.ChallengeID, "credential": a.get(f.t, c.Options)})
	p := decodeJSON[e2ePair](f.t, r.body)
	p.cookie = assertSessionCookie(f.t, r)
	return p
}

func (f *e2eServer) passkeys(bearer reqOpt, path string) []e2ePasskey {
	f.t.Helper()
	return decodeJSON[struct {
		Passkeys []e2ePasskey `json:"passkeys"`
	}](f.t, f.expect(200, "GET", path, nil, bearer).body).Passkeys
}

func e2ePasskeys(t *testing.T, f *e2eServer) {
	e2ePasskeysOff(t, newE2EServer(t, f.cov, e2eSetup{}))
	e2ePasskeyOptionsRate(t, f)

	assert.JSONEq(t, `{"available":true}`, string(f.expect(200, "GET", passkeysPath("/capability"), nil).body))
	f.signup("pia@example.test", e2ePass1)
	pair := f.login("pia@example.test", e2ePass1)
	bearer := withBearer(pair.AccessToken)
	a := newE2EAuthenticator(pair.User.ID)

	// Register.
	f.expectCode(401, "UNAUTHORIZED", "POST", passkeysPath("/register/options"), nil)
	c := decodeJSON[e2eCeremony](t, f.expect(200, "POST", passkeysPath("/register/options"), nil, bearer).body)
	var creation struct {
		PublicKey struct {
			RP   map[string]any `json:"rp"`
			User map[string]any `json:"user"`
		} `json:"publicKey"`
	}
	require.NoError(t, json.Unmarshal(c.Options, &creation))
	assert.Equal(t, "auth.example.test", creation.PublicKey.RP["id"], "the RP ID is the base URL's host")
	assert.Equal(t, base64.RawURLEncoding.EncodeToString(pair.User.ID[:]), creation.PublicKey.User["id"])
	f.expectCode(400, "VALIDATION_FAILED", "POST", passkeysPath("/register/verify"),
		map[string]any{"challengeId": "nope", "credential": map[string]any{}}, bearer)
	pk := decodeJSON[struct {
		Passkey e2ePasskey `json:"passkey"`
	}](t, f.expect(201, "POST", passkeysPath("/register/verify"),
		map[string]any{"challengeId": c.ChallengeID, "credential": a.create(t, c.Options)}, bearer).body).Passkey
	assert.Equal(t, "Google Password Manager", pk.Name)
	assert.Equal(t, googlePasswordManager, pk.AAGUID)
	notice := f.mail.WaitFor(t, "pia@example.test", 10*time.Second)
	assert.Equal(t, "A passkey was added to your account", notice.Subject)

	// List, at the prefix and (bypassing the spec client: a courtesy,
	// documented once) with the trailing slash.
	list := f.passkeys(bearer, passkeysPrefix)
	require.Len(t, list, 1)
	assert.Equal(t, pk.ID, list[0].ID)
	req, err := http.NewRequest("GET", f.c.srv.URL+passkeysPrefix+"/", nil)
	require.NoError(t, err)
	bearer(req.Header)
	resp, err := f.c.srv.Client().Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, errors.Join(err, resp.Body.Close()))
	require.Equal(t, 200, resp.StatusCode, "%s", raw)
	assert.Contains(t, string(raw), pk.ID.String())

	// Sign in with the address and without it; the tokens are tokens of
	// passkey sessions.
	byEmail := f.signInWithPasskey(a, "pia@example.test")
	assert.Equal(t, pair.User.ID, byEmail.User.ID)
	assert.Equal(t, pair.User.ID.String(), f.claims(byEmail.AccessToken)["sub"])
	usernameless := f.signInWithPasskey(a, "")
	assert.Equal(t, pair.User.ID, usernameless.User.ID)
	var current []string
	for _, s := range f.sessions(withBearer(usernameless.AccessToken)) {
		if s.Current {
			current = append(current, s.Method)
		}
	}
	assert.Equal(t, []string{"passkey"}, current)
	f.expect(200, "POST", authPath("/session-to-token"), nil, f.withSession(usernameless.cookie))

	// An assertion replayed, and options for an unknown address: refused,
	// and the same shape.
	c = decodeJSON[e2eCeremony](t, f.expect(200, "POST", passkeysPath("/authenticate/options"), map[string]any{"email": "pia@example.test"}).body)
	assertion := a.get(t, c.Options)
	f.expect(200, "POST", passkeysPath("/authenticate/verify"), map[string]any{"challengeId": c.ChallengeID, "credential": assertion})
	f.expectCode(401, "PASSKEY_VERIFICATION_FAILED", "POST", passkeysPath("/authenticate/verify"),
		map[string]any{"challengeId": c.ChallengeID, "credential": assertion})
	unknown := decodeJSON[e2eCeremony](t, f.expect(200, "POST", passkeysPath("/authenticate/options"), map[string]any{"email": "nobody@example.test"}).body)
	assert.Contains(t, string(unknown.Options), "allowCredentials")

	// With a second factor on: a sign-in with user verification satisfies
	// it by itself; one without answers the factor's challenge, completed
	// at /mfa/verify (here with a recovery code). 1 password operation.
	_, codes, _ := f.mfaEnable(bearer, e2ePass1)
	verified := f.signInWithPasskey(a, "pia@example.test")
	assert.Equal(t, pair.User.ID, verified.User.ID, "UV: no second step")
	a.auth.Options.UserNotVerified = true
	c = decodeJSON[e2eCeremony](t, f.expect(200, "POST", passkeysPath("/authenticate/options"), nil).body)
	r := f.expect(200, "POST", passkeysPath("/authenticate/verify"), map[string]any{"challengeId": c.ChallengeID, "credential": a.get(t, c.Options)})
	a.auth.Options.UserNotVerified = false
	ch := decodeJSON[e2eMFAChallenge](t, r.body)
	require.True(t, ch.MFARequired, "no UV with a second factor: %s", r.body)
	assert.Empty(t, ch.AccessToken)
	assert.Nil(t, sessionCookie(r), "no session cookie before the second step")
	completed := f.mfaVerify(ch.MFAToken, map[string]any{"recoveryCode": codes[0]})
	assert.Equal(t, pair.User.ID, completed.User.ID)

	// Rename, delete; the deleted passkey signs in no more.
	f.expectCode(400, "VALIDATION_FAILED", "PATCH", passkeysPath("/"+pk.ID.String()), map[string]any{"name": " "}, bearer)
	renamed := decodeJSON[struct {
		Passkey e2ePasskey `json:"passkey"`
	}](t, f.expect(200, "PATCH", passkeysPath("/"+pk.ID.String()), map[string]any{"name": " Phone "}, bearer).body).Passkey
	assert.Equal(t, "Phone", renamed.Name)
	assert.NotNil(t, renamed.LastUsedAt)
	f.expectCode(404, "NOT_FOUND", "DELETE", passkeysPath("/"+uuid.NewString()), nil, bearer)
	f.expect(204, "DELETE", passkeysPath("/"+pk.ID.String()), nil, bearer)
	c = decodeJSON[e2eCeremony](t, f.expect(200, "POST", passkeysPath("/authenticate/options"), nil).body)
	f.expectCode(401, "PASSKEY_VERIFICATION_FAILED", "POST", passkeysPath("/authenticate/verify"),
		map[string]any{"challengeId": c.ChallengeID, "credential": a.get(t, c.Options)})

	types := eventTypes(f.events(pair.AccessToken, ""))
	for _, want := range []string{"PASSKEY_REGISTERED", "PASSKEY_RENAMED", "PASSKEY_DELETED", "PASSKEY_LOGIN_FAILURE"} {
		assert.Contains(t, types, want)
	}
}

// e2ePasskeysOff: a server whose base URL browsers run no WebAuthn on
// mounts the routes and says so.
func e2ePasskeysOff(t *testing.T, off *e2eServer) {
	assert.Contains(t, off.logs.String(), "passkeys are off", "the server says so at start")
	assert.JSONEq(t, `{"available":false}`, string(off.expect(200, "GET", passkeysPath("/capability"), nil).body))
	off.expectCode(404, "NOT_FOUND", "POST", passkeysPath("/authenticate/options"), nil)
	off.expectCode(404, "NOT_FOUND", "POST", passkeysPath("/authenticate/verify"), map[string]any{})
	off.expectCode(404, "NOT_FOUND", "GET", passkeysPrefix, nil)
}

// e2ePasskeyOptionsRate: MANA_AUTH_PASSKEY_OPTIONS_RATE reaches the
// options limiter — at 2/min the third options call of an IP is 429 with
// Retry-After; at 0 (load tests) 25 calls in a row pass, where the default
// 20/min would refuse the 21st.
func e2ePasskeyOptionsRate(t *testing.T, f *e2eServer) {
	env := func(rate string) e2eSetup {
		return e2eSetup{env: map[string]string{"MANA_AUTH_BASE_URL": e2eSecureBaseURL, "MANA_AUTH_PASSKEY_OPTIONS_RATE": rate}}
	}
	two := newE2EServer(t, f.cov, env("2/min"))
	for range 2 {
		two.expect(200, "POST", passkeysPath("/authenticate/options"), nil)
	}
	r := two.expectCode(429, "RATE_LIMITED", "POST", passkeysPath("/authenticate/options"), nil)
	assert.NotZero(t, r.RemainingSeconds, "the refusal says when to retry")

	off := newE2EServer(t, f.cov, env("0"))
	for range 25 {
		off.expect(200, "POST", passkeysPath("/authenticate/options"), nil)
	}
}
