package passkey_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/manaauth"
)

// TestPasskeyWalk drives the whole life of a passkey with the software
// authenticator over HTTP: register, list, sign in with and without the
// address, the token validates and is a passkey session, rename, delete,
// and the deleted passkey signs in no more. Each step checks what it
// stored, so a step that answers well but records nothing fails here.
func TestPasskeyWalk(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "walk@example.com")
	k := newSoftKey(u.id)
	k.transports = []string{"internal", "hybrid", "internal", "NOT valid"}

	// Register: the options exclude nothing yet, ask for a discoverable
	// credential and user verification (both preferred) and carry the
	// user's id as the user handle.
	c := p.registerOptions(t, u.access)
	var creation struct {
		PublicKey struct {
			RP                     map[string]any   `json:"rp"`
			User                   map[string]any   `json:"user"`
			Challenge              string           `json:"challenge"`
			ExcludeCredentials     []map[string]any `json:"excludeCredentials"`
			AuthenticatorSelection map[string]any   `json:"authenticatorSelection"`
			Timeout                int              `json:"timeout"`
		} `json:"publicKey"`
	}
	require.NoError(t, json.Unmarshal(c.Options, &creation))
	assert.Equal(t, pkRPID, creation.PublicKey.RP["id"])
	assert.Equal(t, base64.RawURLEncoding.EncodeToString(u.id[:]), creation.PublicKey.User["id"], "the user handle is the user id")
	assert.Equal(t, "walk@example.com", creation.PublicKey.User["name"])
	assert.Empty(t, creation.PublicKey.ExcludeCredentials)
	assert.Equal(t, "preferred", creation.PublicKey.AuthenticatorSelection["residentKey"])
	assert.Equal(t, "preferred", creation.PublicKey.AuthenticatorSelection["userVerification"])
	assert.Equal(t, 300000, creation.PublicKey.Timeout, "the browser waits as long as the challenge lives")
	st, out, _ := p.Call(t, "POST", pkPrefix+"/register/verify",
		map[string]any{"challengeId": c.ChallengeID, "credential": k.create(t, c.Options)}, authtest.Bearer(u.access))
	require.Equal(t, http.StatusCreated, st, "%v", out)
	pk := decodeAs[struct {
		Passkey pkPasskey `json:"passkey"`
	}](t, out).Passkey
	assert.Equal(t, "iCloud Keychain", pk.Name, "named after its authenticator")
	assert.Equal(t, icloud, pk.AAGUID)
	assert.Equal(t, []string{"hybrid", "internal"}, pk.Transports, "sorted, de-duplicated, invalid names dropped")
	assert.Nil(t, pk.LastUsedAt)
	assert.True(t, p.spent(t, c.ChallengeID))
	assert.Equal(t, 1, p.events(t, u.id, "PASSKEY_REGISTERED"))
	assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.passkeys WHERE id = $1 AND user_id = $2
		AND credential_id = $3 AND octet_length(public_key) > 60 AND sign_count = 0 AND aaguid = $4
		AND transports = 'hybrid,internal' AND NOT backup_eligible AND NOT backup_state`, pk.ID, u.id, k.cred.ID, icloud))
	notice := p.SMTP.WaitFor(t, "walk@example.com", authtest.MailWait)
	assert.Equal(t, "A passkey was added to your account", notice.Subject)
	assert.Contains(t, notice.Text, "(iCloud Keychain)")

	// The second registration's options exclude the first credential.
	c2 := p.registerOptions(t, u.access)
	assert.Contains(t, string(c2.Options), base64.RawURLEncoding.EncodeToString(k.cred.ID), "existing credentials are excluded")

	// List.
	st, out, _ = p.Call(t, "GET", pkPrefix+"/", nil, authtest.Bearer(u.access))
	require.Equal(t, http.StatusOK, st, "%v", out)
	list := decodeAs[struct {
		Passkeys []pkPasskey `json:"passkeys"`
	}](t, out).Passkeys
	require.Len(t, list, 1)
	assert.Equal(t, pk, list[0])
	for _, item := range out["passkeys"].([]any) {
		assert.ElementsMatch(t, []string{"id", "name", "createdAt", "lastUsedAt", "transports", "aaguid"},
			authtest.Keys(item.(map[string]any)), "exactly api.md's fields: never the public key")
	}

	// Sign in with the address: the options list the credential.
	before := p.sessions(t, u.id)
	opts := p.signInOptions(t, "Walk@Example.com ")
	assert.Contains(t, string(opts.Options), base64.RawURLEncoding.EncodeToString(k.cred.ID))
	st, body, resp := p.verify(t, opts.ChallengeID, k.get(t, opts.Options))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "Bearer", body["tokenType"])
	assert.Equal(t, u.id.String(), authtest.UserOf(t, body)["id"])
	var cookie bool
	for _, ck := range resp.Cookies() {
		cookie = cookie || (ck.Name == manaauth.SessionCookie && ck.Value != "")
	}
	assert.True(t, cookie, "the session cookie is set, as by /login")
	assert.Equal(t, before+1, p.sessions(t, u.id))
	assert.Equal(t, 1, p.signCount(t, pk.ID), "the counter is stored")
	assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.passkeys WHERE id = $1 AND last_used_at = $2`, pk.ID, p.Clock.Now()))
	assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE user_id = $1 AND event_type = 'LOGIN_SUCCESS'
		AND metadata->>'method' = 'passkey'`, u.id))
	assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.login_attempts WHERE email = 'walk@example.com'
		AND method = 'passkey' AND successful`))

	// The token validates and belongs to a passkey session.
	access, _ := body["accessToken"].(string)
	st, out, _ = p.Call(t, "POST", authtest.AuthPrefix+"/validate", map[string]any{"token": access}, nil)
	require.Equal(t, http.StatusOK, st, "%v", out)
	assert.Equal(t, true, out["valid"])
	st, out, _ = p.Call(t, "GET", authtest.AuthPrefix+"/sessions", nil, authtest.Bearer(access))
	require.Equal(t, http.StatusOK, st, "%v", out)
	var methods []string
	for _, s := range out["sessions"].([]any) {
		if s.(map[string]any)["current"] == true {
			methods = append(methods, s.(map[string]any)["method"].(string))
		}
	}
	assert.Equal(t, []string{"passkey"}, methods)

	// Sign in without the address: usernameless, the user handle names
	// the account.
	opts = p.signInOptions(t, "")
	assert.NotContains(t, string(opts.Options), "allowCredentials")
	body = p.signIn(t, "", k)
	assert.Equal(t, u.id.String(), authtest.UserOf(t, body)["id"])
	assert.Equal(t, 2, p.signCount(t, pk.ID), "the counter grows with each sign-in")

	// Rename: trimmed; the same name again writes nothing.
	st, out, _ = p.Call(t, "PATCH", pkPrefix+"/"+pk.ID.String(), map[string]any{"name": "  Laptop  "}, authtest.Bearer(u.access))
	require.Equal(t, http.StatusOK, st, "%v", out)
	renamed := decodeAs[struct {
		Passkey pkPasskey `json:"passkey"`
	}](t, out).Passkey
	assert.Equal(t, "Laptop", renamed.Name)
	assert.NotNil(t, renamed.LastUsedAt)
	st, _, _ = p.Call(t, "PATCH", pkPrefix+"/"+pk.ID.String(), map[string]any{"name": "Laptop"}, authtest.Bearer(u.access))
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, 1, p.events(t, u.id, "PASSKEY_RENAMED"))
	assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE user_id = $1 AND event_type = 'PASSKEY_RENAMED'
		AND metadata->>'name' = 'Laptop' AND metadata->>'previousName' = 'iCloud Keychain'`, u.id))

	// Delete (the account has a password), then the passkey signs in no
	// more.
	st, out, _ = p.Call(t, "DELETE", pkPrefix+"/"+pk.ID.String(), nil, authtest.Bearer(u.access))
	require.Equal(t, http.StatusNoContent, st, "%v", out)
	assert.Equal(t, 1, p.events(t, u.id, "PASSKEY_DELETED"))
	sessions := p.sessions(t, u.id)
	for _, email := range []string{"walk@example.com", ""} {
		c := p.signInOptions(t, email)
		st, out, _ := p.verify(t, c.ChallengeID, k.get(t, c.Options))
		authtest.RequireError(t, st, out, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")
	}
	assert.Equal(t, sessions, p.sessions(t, u.id), "no session after the deletion")
	st, out, _ = p.Call(t, "GET", pkPrefix+"/", nil, authtest.Bearer(u.access))
	require.Equal(t, http.StatusOK, st)
	assert.Empty(t, out["passkeys"])
}

// TestRegistrationNeedsARecentLiveSession: registering takes a session
// signed in within 10 minutes (REAUTH_REQUIRED after, at options and at
// verify), and a live one (a revoked session's token is refused).
// Negative control: without the recency check both 401s below become 200
// and 201.
func TestRegistrationNeedsARecentLiveSession(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "recent@example.com")
	k := newSoftKey(u.id)
	c := p.registerOptions(t, u.access)

	p.Clock.Advance(10*time.Minute + time.Second)
	st, out, _ := p.Call(t, "POST", pkPrefix+"/register/options", nil, authtest.Bearer(u.access))
	authtest.RequireError(t, st, out, http.StatusUnauthorized, "REAUTH_REQUIRED")
	st, out, _ = p.Call(t, "POST", pkPrefix+"/register/verify",
		map[string]any{"challengeId": c.ChallengeID, "credential": k.create(t, c.Options)}, authtest.Bearer(u.access))
	authtest.RequireError(t, st, out, http.StatusUnauthorized, "REAUTH_REQUIRED")
	assert.False(t, p.spent(t, c.ChallengeID), "a refused verify leaves the challenge")
	assert.Zero(t, p.OwnerInt(t, `SELECT count(*) FROM auth.passkeys`))

	// A fresh sign-in may register; a revoked session may not.
	fresh, _ := p.Login(t, u.email, authtest.StrongPassword)
	p.register(t, fresh, k)
	claims, err := p.Tokens.Verify(fresh)
	require.NoError(t, err)
	sessionID := uuid.MustParse(claims.SessionID)
	require.NoError(t, p.Auth.RevokeSession(context.Background(), u.id, sessionID, manaauth.Client{}))
	p.live.Forget(sessionID)
	st, out, _ = p.Call(t, "POST", pkPrefix+"/register/options", nil, authtest.Bearer(fresh))
	authtest.RequireError(t, st, out, http.StatusUnauthorized, "TOKEN_INVALID")
	st, out, _ = p.Call(t, "GET", pkPrefix+"/", nil, authtest.Bearer(fresh))
	authtest.RequireError(t, st, out, http.StatusUnauthorized, "TOKEN_INVALID")
	st, out, _ = p.Call(t, "GET", pkPrefix+"/", nil, nil)
	authtest.RequireError(t, st, out, http.StatusUnauthorized, "UNAUTHORIZED")
}

// TestManagementRefusals: names are validated, another user's passkey is
// not found, and the last passkey of an account without a password
// cannot go. Negative control: without the last-credential check the
// final delete answers 204 and the account has no way in left.
func TestManagementRefusals(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "owner@example.com")
	other := p.user(t, "other@example.com")
	k1, k2 := newSoftKey(u.id), newSoftKey(u.id)
	pk1 := p.register(t, u.access, k1, "  first ")
	assert.Equal(t, "first", pk1.Name, "a given name is trimmed")
	pk2 := p.register(t, u.access, k2)
	bearer := authtest.Bearer(u.access)

	for name, bad := range map[string]any{
		"empty": "", "blank": "   ", "too long": strings.Repeat("x", 65), "control": "a\u0007b", "bidi": "a\u202Eb", "null": nil,
	} {
		st, out, _ := p.Call(t, "PATCH", pkPrefix+"/"+pk1.ID.String(), map[string]any{"name": bad}, bearer)
		authtest.RequireError(t, st, out, http.StatusBadRequest, "VALIDATION_FAILED")
		assert.Contains(t, authtest.ErrFields(out), "name", name)
	}
	st, out, _ := p.Call(t, "PATCH", pkPrefix+"/"+pk1.ID.String(), map[string]any{"name": strings.Repeat("é", 64)}, bearer)
	require.Equal(t, http.StatusOK, st, "64 characters (128 bytes) is fine: %v", out)

	for _, path := range []string{"/" + pk1.ID.String(), "/" + uuid.NewString(), "/not-a-uuid", "/" + strings.ReplaceAll(pk1.ID.String(), "-", "")} {
		st, out, _ := p.Call(t, "PATCH", pkPrefix+path, map[string]any{"name": "mine now"}, authtest.Bearer(other.access))
		authtest.RequireError(t, st, out, http.StatusNotFound, "NOT_FOUND")
		st, out, _ = p.Call(t, "DELETE", pkPrefix+path, nil, authtest.Bearer(other.access))
		authtest.RequireError(t, st, out, http.StatusNotFound, "NOT_FOUND")
	}
	assert.Equal(t, 2, p.OwnerInt(t, `SELECT count(*) FROM auth.passkeys WHERE user_id = $1`, u.id), "nothing of another user changed")

	// Without a password the last passkey is the only way in.
	_, err := p.DB.Owner.Exec(context.Background(), `UPDATE auth.users SET password_hash = NULL WHERE id = $1`, u.id)
	require.NoError(t, err)
	st, out, _ = p.Call(t, "DELETE", pkPrefix+"/"+pk1.ID.String(), nil, bearer)
	require.Equal(t, http.StatusNoContent, st, "another passkey remains: %v", out)
	st, out, _ = p.Call(t, "DELETE", pkPrefix+"/"+pk2.ID.String(), nil, bearer)
	authtest.RequireError(t, st, out, http.StatusConflict, "CONFLICT")
	assert.Equal(t, "last_credential", authtest.ErrDetails(out)["reason"])
	assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.passkeys WHERE user_id = $1`, u.id))
	assert.Equal(t, 1, p.events(t, u.id, "PASSKEY_DELETED"))
}
