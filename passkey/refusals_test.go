package passkey_test

import (
	"encoding/json"
	"net/http"
	"testing"

	vw "github.com/descope/virtualwebauthn"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/passkey"
)

// refusalSetup is a user with a registered passkey that signed in once
// (so its counter is 1 and it has a last use), and that sign-in's
// challenge and assertion.
type refusalSetup struct {
	u         pkUser
	k         *softKey
	pk        pkPasskey
	challenge string
	assertion json.RawMessage
}

// clone returns a copy of k whose authenticator, credential and relying
// party can be changed without touching k.
func (k *softKey) clone() *softKey {
	c := *k
	c.auth.Credentials = append([]vw.Credential(nil), k.auth.Credentials...)
	return &c
}

// TestSignInRefusals: every way an assertion must be refused, each
// followed by the check that nothing changed — no session, the stored
// counter and last use as they were, the challenge spent or not as
// documented, no failure counted toward the password lockout — and that
// the refusal was recorded (a login_attempts row, PASSKEY_LOGIN_FAILURE,
// and PASSKEY_CLONE_SUSPECTED for the clone signals only).
//
// Negative controls, by case: without the signature check "another key"
// signs in; without the origin or RP ID hash checks their cases sign in;
// spending the challenge by a plain read (no used_at condition) lets the
// replay sign in; without expires_at in the UPDATE the expired challenge
// signs in; without the ceremony condition the registration challenge
// serves a sign-in; without the user handle comparison the foreign
// handle signs in as the credential's owner; without the counter check
// the regressed counter signs in; without UV enforcement the unverified
// assertion signs in under a "required" configuration; and a clone
// judged before the signature (or a plain failure judged a clone) shows
// in the clone event counts.
func TestSignInRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		uv   protocol.UserVerificationRequirement
		// refuse sends one verification that must fail and returns the
		// challenge it named.
		refuse func(t *testing.T, p *pkFixture, s refusalSetup) (challenge string, st int, body map[string]any)
		spent  bool   // the named challenge is spent afterwards
		clone  string // the clone reason recorded, "" for none
		reason string // the failure reason recorded
	}{
		{name: "assertion signed by another key", spent: true, reason: "assertion",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				forged := s.k.clone()
				forged.cred.Key = newCredential().Key // same credential id, another key
				c := p.signInOptions(t, s.u.email)
				st, body, _ := p.verify(t, c.ChallengeID, forged.get(t, c.Options))
				return c.ChallengeID, st, body
			}},
		{name: "wrong origin", spent: true, reason: "assertion",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				phished := s.k.clone()
				phished.rp.Origin = "https://app.test.example.evil.example"
				c := p.signInOptions(t, s.u.email)
				st, body, _ := p.verify(t, c.ChallengeID, phished.get(t, c.Options))
				return c.ChallengeID, st, body
			}},
		{name: "wrong RP ID hash", spent: true, reason: "assertion",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				other := s.k.clone()
				other.rp.ID = "test.example" // a parent domain: a credential scoped to another RP ID
				c := p.signInOptions(t, "")
				st, body, _ := p.verify(t, c.ChallengeID, other.get(t, c.Options))
				return c.ChallengeID, st, body
			}},
		{name: "replayed challenge", spent: true, reason: "challenge",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				st, body, _ := p.verify(t, s.challenge, s.assertion)
				return s.challenge, st, body
			}},
		{name: "expired challenge", spent: false, reason: "challenge",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				c := p.signInOptions(t, s.u.email)
				p.Clock.Advance(passkey.ChallengeTTL)
				st, body, _ := p.verify(t, c.ChallengeID, s.k.get(t, c.Options))
				return c.ChallengeID, st, body
			}},
		{name: "challenge of the registration ceremony", spent: false, reason: "challenge",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				reg := p.registerOptions(t, s.u.access)
				c := p.signInOptions(t, s.u.email)
				st, body, _ := p.verify(t, reg.ChallengeID, s.k.get(t, c.Options))
				assert.False(t, p.spent(t, c.ChallengeID), "the sign-in challenge was not named")
				return reg.ChallengeID, st, body
			}},
		{name: "user handle of another user", spent: true, clone: "user_handle", reason: "user_handle",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				other := p.user(t, "someone-else@example.com")
				theirs := p.sessions(t, other.id)
				mallory := s.k.clone()
				mallory.auth.Options.UserHandle = other.id[:]
				c := p.signInOptions(t, "")
				st, body, _ := p.verify(t, c.ChallengeID, mallory.get(t, c.Options))
				assert.Equal(t, theirs, p.sessions(t, other.id), "the other user got no session")
				return c.ChallengeID, st, body
			}},
		{name: "sign-count regression", spent: true, clone: "sign_count", reason: "sign_count",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				copied := s.k.clone()
				copied.cred.Counter = 0 // a copy of the key made before the last sign-in: it signs with 1 again
				c := p.signInOptions(t, s.u.email)
				st, body, _ := p.verify(t, c.ChallengeID, copied.get(t, c.Options))
				return c.ChallengeID, st, body
			}},
		{name: "backup eligibility changed", spent: true, clone: "backup_eligible", reason: "backup_eligible",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				synced := s.k.clone()
				synced.auth.Options.BackupEligible = true
				c := p.signInOptions(t, s.u.email)
				st, body, _ := p.verify(t, c.ChallengeID, synced.get(t, c.Options))
				return c.ChallengeID, st, body
			}},
		{name: "UV flag absent when required", uv: protocol.VerificationRequired, spent: true, reason: "assertion",
			refuse: func(t *testing.T, p *pkFixture, s refusalSetup) (string, int, map[string]any) {
				lazy := s.k.clone()
				lazy.auth.Options.UserNotVerified = true
				c := p.signInOptions(t, s.u.email)
				assert.Contains(t, string(c.Options), `"userVerification":"required"`)
				st, body, _ := p.verify(t, c.ChallengeID, lazy.get(t, c.Options))
				return c.ChallengeID, st, body
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPkFixture(t, pkOptions{uv: tc.uv})
			u := p.user(t, "refused@example.com")
			k := newSoftKey(u.id)
			pk := p.register(t, u.access, k)
			c := p.signInOptions(t, u.email)
			assertion := k.get(t, c.Options)
			st, body, _ := p.verify(t, c.ChallengeID, assertion)
			require.Equal(t, http.StatusOK, st, "the baseline sign-in: %v", body)
			s := refusalSetup{u: u, k: k, pk: pk, challenge: c.ChallengeID, assertion: assertion}

			sessions := p.sessions(t, u.id)
			lastUsed := p.OwnerInt(t, `SELECT extract(epoch FROM last_used_at)::int FROM auth.passkeys WHERE id = $1`, pk.ID)
			require.Equal(t, 1, p.signCount(t, pk.ID))

			challenge, st, body := tc.refuse(t, p, s)
			authtest.RequireError(t, st, body, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")
			assert.Equal(t, "passkey verification failed", body["error"].(map[string]any)["message"], "the same vague answer whatever the reason")

			assert.Equal(t, sessions, p.sessions(t, u.id), "no session")
			assert.Equal(t, 1, p.signCount(t, pk.ID), "the counter is unchanged")
			assert.Equal(t, lastUsed, p.OwnerInt(t, `SELECT extract(epoch FROM last_used_at)::int FROM auth.passkeys WHERE id = $1`, pk.ID))
			assert.Equal(t, tc.spent, p.spent(t, challenge), "challenge spent")
			assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE user_id = $1
				AND event_type = 'PASSKEY_LOGIN_FAILURE' AND metadata->>'reason' = $2 AND metadata->>'passkeyId' = $3`,
				u.id, tc.reason, pk.ID.String()), "the failure is recorded with its reason")
			assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.login_attempts WHERE email = $1
				AND method = 'passkey' AND NOT successful`, u.email), "an unsuccessful attempt row")
			assert.Zero(t, p.OwnerInt(t, `SELECT coalesce(sum(cardinality(failures)), 0) FROM auth.lockouts WHERE email = $1`, u.email),
				"a passkey failure never counts toward the password lockout")
			if tc.clone != "" {
				assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE user_id = $1
					AND event_type = 'PASSKEY_CLONE_SUSPECTED' AND metadata->>'reason' = $2`, u.id, tc.clone))
			} else {
				assert.Zero(t, p.events(t, u.id, "PASSKEY_CLONE_SUSPECTED"), "not a clone signal")
			}

			// The refusal left the credential usable: the genuine
			// authenticator still signs in.
			p.signIn(t, u.email, k)
		})
	}
}

// TestRegistrationRefusals: an attestation for the wrong origin, a
// sign-in challenge, another user's challenge, UV missing when required,
// and a credential registered already are refused, and nothing is
// stored. Negative control: without the user condition of the spend,
// Bob registers with Alice's challenge.
func TestRegistrationRefusals(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{uv: protocol.VerificationRequired})
	alice := p.user(t, "alice@example.com")
	bob := p.user(t, "bob@example.com")
	k := newSoftKey(alice.id)
	verify := func(access, challenge string, credential json.RawMessage) (int, map[string]any) {
		st, body, _ := p.Call(t, "POST", pkPrefix+"/register/verify",
			map[string]any{"challengeId": challenge, "credential": credential}, authtest.Bearer(access))
		return st, body
	}

	c := p.registerOptions(t, alice.access)
	phished := k.clone()
	phished.rp.Origin = "https://evil.example"
	st, body := verify(alice.access, c.ChallengeID, phished.create(t, c.Options))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")
	assert.True(t, p.spent(t, c.ChallengeID), "a failed verification spends its challenge")

	signIn := p.signInOptions(t, "")
	c = p.registerOptions(t, alice.access)
	st, body = verify(alice.access, signIn.ChallengeID, k.create(t, c.Options))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")
	assert.False(t, p.spent(t, signIn.ChallengeID), "a sign-in challenge does not register")

	st, body = verify(bob.access, c.ChallengeID, k.create(t, c.Options))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")
	assert.False(t, p.spent(t, c.ChallengeID), "another user's challenge is not Bob's to spend")

	lazy := k.clone()
	lazy.auth.Options.UserNotVerified = true
	st, body = verify(alice.access, c.ChallengeID, lazy.create(t, c.Options))
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")

	for name, bad := range map[string]map[string]any{
		"no challenge":  {"credential": map[string]any{}},
		"bad challenge": {"challengeId": "x", "credential": map[string]any{}},
		"no credential": {"challengeId": c.ChallengeID},
		"bad name":      {"challengeId": c.ChallengeID, "credential": map[string]any{}, "name": ""},
	} {
		st, body, _ := p.Call(t, "POST", pkPrefix+"/register/verify", bad, authtest.Bearer(alice.access))
		authtest.RequireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
		assert.NotEmpty(t, authtest.ErrFields(body), name)
	}
	assert.Zero(t, p.OwnerInt(t, `SELECT count(*) FROM auth.passkeys`), "nothing registered")
	assert.Zero(t, p.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE event_type = 'PASSKEY_REGISTERED'`))

	// The same credential again: for Alice the options exclude it (a real
	// authenticator refuses); a client that ignores that, or Bob with a
	// copy of it, gets 409.
	p.register(t, alice.access, k)
	for _, who := range []pkUser{alice, bob} {
		c := p.registerOptions(t, who.access)
		st, body := verify(who.access, c.ChallengeID, k.create(t, c.Options))
		authtest.RequireError(t, st, body, http.StatusConflict, "CONFLICT")
	}
	assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.passkeys`))
}
