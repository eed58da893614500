package main

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/grant"
	"github.com/mana-how/mana-auth/grant/grantpg"
	"github.com/mana-how/mana-auth/internal/testutil"
)

// The API key and data groups of TestAuthEndToEnd drive /api/v1/api-keys
// and /api/v1/me/data as run mounts them, every answer validated against
// openapi.yaml: a user with rows in every table that holds data about a
// user exports all of them and no secret; a test finds every such table
// of the database and fails on one that is neither exported nor excluded
// on purpose; erasure leaves no row with the user's id or addresses, and
// the address can sign up again. About 20 password operations.

const e2eServiceKey = "e2e-service-key-0123456789abcdefghijklmnop"

func apiKeysPath(p string) string { return apiKeysPrefix + p }

type e2eAPIKey struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
}

type e2eCreatedKey struct {
	Key    string    `json:"key"`
	APIKey e2eAPIKey `json:"apiKey"`
}

func (f *e2eServer) createKey(bearer reqOpt, body any) e2eCreatedKey {
	f.t.Helper()
	return decodeJSON[e2eCreatedKey](f.t, f.expect(201, "POST", apiKeysPath(""), body, bearer).body)
}

func (f *e2eServer) apiKeys(bearer reqOpt) []e2eAPIKey {
	f.t.Helper()
	return decodeJSON[struct {
		APIKeys []e2eAPIKey `json:"apiKeys"`
	}](f.t, f.expect(200, "GET", apiKeysPath(""), nil, bearer).body).APIKeys
}

func (f *e2eServer) validateKey(key, scope string) map[string]any {
	f.t.Helper()
	body := map[string]any{"key": key}
	if scope != "" {
		body["scope"] = scope
	}
	return decodeJSON[map[string]any](f.t, f.expect(200, "POST", apiKeysPath("/validate"), body,
		withHeader("X-Service-Key", e2eServiceKey)).body)
}

// e2eAPIKeys: create, list, validate, revoke, and the refusals. 2 password
// operations.
func e2eAPIKeys(t *testing.T, f *e2eServer) {
	alice := f.signup("alice@example.test", e2ePass1)
	a := withBearer(f.validToken(alice.ID, alice.Email))
	bob := f.signup("bob@example.test", e2ePass2)
	b := withBearer(f.validToken(bob.ID, bob.Email))

	f.expectCode(401, "UNAUTHORIZED", "GET", apiKeysPath(""), nil)
	assert.Empty(t, f.apiKeys(a))
	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	k := f.createKey(a, map[string]any{"name": "deploys", "scopes": []string{"deploy:write", "read"}, "expiresAt": exp.Format(time.RFC3339)})
	assert.Equal(t, k.Key[:12], k.APIKey.Prefix)
	assert.Equal(t, []string{"deploy:write", "read"}, k.APIKey.Scopes)
	require.NotNil(t, k.APIKey.ExpiresAt)
	assert.True(t, exp.Equal(*k.APIKey.ExpiresAt))
	plain := f.createKey(a, map[string]any{"name": "plain"})
	assert.Empty(t, plain.APIKey.Scopes)
	listed := f.apiKeys(a)
	require.Len(t, listed, 2)
	raw := string(f.expect(200, "GET", apiKeysPath(""), nil, a).body)
	assert.NotContains(t, raw, k.Key[12:], "the list never shows a key")

	e := f.expectCode(400, "VALIDATION_FAILED", "POST", apiKeysPath(""), map[string]any{"name": "x", "scopes": []string{"Admin"}}, a)
	assert.Contains(t, e.Details["fields"], "scopes")

	// Validation, for services.
	assert.Equal(t, map[string]any{"valid": true, "userId": alice.ID.String(), "scopes": []any{"deploy:write", "read"}},
		f.validateKey(k.Key, "read"))
	assert.Equal(t, map[string]any{"valid": false, "reason": "scope"}, f.validateKey(k.Key, "admin"))
	assert.Equal(t, map[string]any{"valid": false, "reason": "unknown"}, f.validateKey("sk_live_nope", ""))
	f.expectCode(401, "UNAUTHORIZED", "POST", apiKeysPath("/validate"), map[string]any{"key": k.Key})
	f.expectCode(401, "UNAUTHORIZED", "POST", apiKeysPath("/validate"), map[string]any{"key": k.Key}, withHeader("X-Service-Key", "wrong"))
	f.expectCode(401, "UNAUTHORIZED", "POST", apiKeysPath("/validate"), map[string]any{"key": k.Key}, a)
	f.expectCode(400, "VALIDATION_FAILED", "POST", apiKeysPath("/validate"), map[string]any{}, withHeader("X-Service-Key", e2eServiceKey))

	// Bob cannot revoke alice's key; alice can, and the key is refused at once.
	f.expectCode(404, "NOT_FOUND", "DELETE", apiKeysPath("/"+k.APIKey.ID.String()), nil, b)
	f.expectCode(404, "NOT_FOUND", "DELETE", apiKeysPath("/not-an-id"), nil, a)
	f.expect(204, "DELETE", apiKeysPath("/"+k.APIKey.ID.String()), nil, a)
	assert.Equal(t, map[string]any{"valid": false, "reason": "revoked"}, f.validateKey(k.Key, ""))
	assert.Len(t, f.apiKeys(a), 1)
	assert.Equal(t, 1, f.count(`SELECT count(*) FROM auth.security_events WHERE event_type = 'API_KEY_REVOKED' AND user_id = $1`, alice.ID))
}

// count runs a counting query as the owner.
func (f *e2eServer) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.db.Owner.QueryRow(context.Background(), sql, args...).Scan(&n), sql)
	return n
}

type e2eExport struct {
	ExportedAt string                      `json:"exportedAt"`
	User       e2eUser                     `json:"user"`
	Sections   map[string][]map[string]any `json:"sections"`
}

// export downloads the caller's data.
func (f *e2eServer) export(bearer reqOpt) (e2eExport, string) {
	f.t.Helper()
	r := f.expect(200, "GET", dataPath, nil, bearer)
	assert.Equal(f.t, `attachment; filename="mana-auth-export-`+time.Now().UTC().Format("2006-01-02")+`.json"`,
		r.header.Get("Content-Disposition"))
	return decodeJSON[e2eExport](f.t, r.body), string(r.body)
}

// secrets collects every secret of the fixture, in every spelling an
// export could leak it in.
type secrets struct{ forms map[string]string } // form → what it is

func (s *secrets) text(what, v string) {
	if s.forms == nil {
		s.forms = map[string]string{}
	}
	s.forms[v] = what
	sum := sha256.Sum256([]byte(v))
	s.bytes(what+" (SHA-256)", sum[:])
}

func (s *secrets) bytes(what string, b []byte) {
	if s.forms == nil {
		s.forms = map[string]string{}
	}
	if len(b) == 0 {
		return
	}
	s.forms[hex.EncodeToString(b)] = what + " hex"
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		s.forms[enc.EncodeToString(b)] = what + " base64"
	}
	// JSON escapes "/" as is and "+" as is; a bytea in row_to_json is \x + hex.
}

// leaked lists the secrets found in text (hex case-insensitively).
func (s *secrets) leaked(text string) []string {
	lower := strings.ToLower(text)
	var out []string
	for form, what := range s.forms {
		if len(form) < 8 {
			continue
		}
		if strings.Contains(text, form) || strings.Contains(lower, strings.ToLower(form)) && strings.HasSuffix(what, "hex") {
			out = append(out, what)
		}
	}
	slices.Sort(out)
	return out
}

// dbSecrets adds the stored secrets of userID: hashes, the password hash,
// the wrapped keys.
func (f *e2eServer) dbSecrets(s *secrets, userID uuid.UUID) {
	f.t.Helper()
	for what, sql := range map[string]string{
		"session cookie hash":     `SELECT cookie_hash FROM auth.sessions WHERE user_id = $1 AND cookie_hash IS NOT NULL`,
		"refresh token hash":      `SELECT t.token_hash FROM auth.refresh_tokens t JOIN auth.sessions s ON s.id = t.session_id WHERE s.user_id = $1`,
		"one-time token hash":     `SELECT token_hash FROM auth.one_time_tokens WHERE user_id = $1`,
		"invitation token hash":   `SELECT i.token_hash FROM auth.space_invitations i WHERE i.invited_by = $1 OR i.email IN (SELECT email FROM auth.user_emails WHERE user_id = $1)`,
		"API key hash":            `SELECT key_hash FROM auth.api_keys WHERE user_id = $1`,
		"wrapped master key":      `SELECT wrapped_mk FROM auth.encryption_vaults WHERE user_id = $1 AND wrapped_mk IS NOT NULL`,
		"wrap IV":                 `SELECT wrap_iv FROM auth.encryption_vaults WHERE user_id = $1 AND wrap_iv IS NOT NULL`,
		"recovery wrap":           `SELECT recovery_wrapped_mk FROM auth.encryption_vaults WHERE user_id = $1 AND recovery_wrapped_mk IS NOT NULL`,
		"recovery IV":             `SELECT recovery_iv FROM auth.encryption_vaults WHERE user_id = $1 AND recovery_iv IS NOT NULL`,
		"password hash (as text)": `SELECT convert_to(password_hash, 'UTF8') FROM auth.users WHERE id = $1`,
		"sealed TOTP secret":      `SELECT secret_sealed FROM auth.mfa_factors WHERE user_id = $1`,
		"recovery code hash":      `SELECT code_hash FROM auth.mfa_recovery_codes WHERE user_id = $1`,
		"mfaToken hash":           `SELECT token_hash FROM auth.mfa_challenges WHERE user_id = $1`,
	} {
		rows, err := f.db.Owner.Query(context.Background(), sql, userID)
		require.NoError(f.t, err, what)
		n := 0
		for rows.Next() {
			var b []byte
			require.NoError(f.t, rows.Scan(&b))
			s.bytes(what, b)
			if what == "password hash (as text)" {
				s.forms[string(b)] = what
			}
			n++
		}
		require.NoError(f.t, rows.Err())
		require.Positive(f.t, n, "the fixture has a %s", what)
	}
}

// dataTable is a table holding data about users: a user_id column, a
// column named like email, or a column referencing auth.users.
type dataTable struct {
	Name     string   // schema.table
	IDCols   []string // user_id and the columns referencing auth.users(id)
	MailCols []string // columns named like email
}

// dataTables lists them from the catalogue of db.
func dataTables(t testing.TB, db *testutil.Database) []dataTable {
	t.Helper()
	rows, err := db.Owner.Query(context.Background(), `
		SELECT c.table_schema || '.' || c.table_name,
		       coalesce(array_agg(c.column_name::text ORDER BY c.column_name)
		                FILTER (WHERE c.column_name = 'user_id' OR EXISTS (
		                  SELECT 1 FROM pg_constraint k
		                  WHERE k.contype = 'f' AND k.confrelid = 'auth.users'::regclass
		                    AND k.conrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass
		                    AND (SELECT attname FROM pg_attribute WHERE attrelid = k.conrelid AND attnum = k.conkey[1]) = c.column_name)), '{}'),
		       coalesce(array_agg(c.column_name::text ORDER BY c.column_name) FILTER (WHERE c.column_name ILIKE '%email%'), '{}')
		FROM information_schema.columns c
		JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name AND tb.table_type = 'BASE TABLE'
		WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
		GROUP BY c.table_schema, c.table_name
		HAVING bool_or(c.column_name = 'user_id' OR c.column_name ILIKE '%email%' OR EXISTS (
		         SELECT 1 FROM pg_constraint k
		         WHERE k.contype = 'f' AND k.confrelid = 'auth.users'::regclass
		           AND k.conrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass
		           AND (SELECT attname FROM pg_attribute WHERE attrelid = k.conrelid AND attnum = k.conkey[1]) = c.column_name))
		ORDER BY 1`)
	require.NoError(t, err)
	var out []dataTable
	for rows.Next() {
		var d dataTable
		require.NoError(t, rows.Scan(&d.Name, &d.IDCols, &d.MailCols))
		out = append(out, d)
	}
	require.NoError(t, rows.Err())
	return out
}

// notExported are the tables with a user_id, email or auth.users column
// that the export leaves out on purpose, each with the reason. Nothing is
// left out today. A table belongs here only when it holds nothing about a
// person (a counter keyed by a hash, say); a new table about users is
// exported by the package that owns it (gdpr.Exporter, listed in
// mountData), never excluded to make this test pass.
var notExported = map[string]string{}

// uncovered lists the data tables of db that are neither exported
// (sections) nor in notExported.
func uncovered(t testing.TB, db *testutil.Database, sections map[string][]map[string]any) []string {
	t.Helper()
	var out []string
	for _, d := range dataTables(t, db) {
		if _, ok := sections[d.Name]; ok {
			continue
		}
		if _, ok := notExported[d.Name]; ok {
			continue
		}
		out = append(out, d.Name)
	}
	return out
}

// rowsAbout counts, per data table, the rows whose id columns hold userID
// or whose email columns hold one of emails.
func rowsAbout(t testing.TB, db *testutil.Database, userID uuid.UUID, emails []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, d := range dataTables(t, db) {
		var conds []string
		for _, c := range d.IDCols {
			conds = append(conds, fmt.Sprintf("%q = $1", c))
		}
		for _, c := range d.MailCols {
			conds = append(conds, fmt.Sprintf("lower(%q::text) = ANY ($2::text[])", c))
		}
		schema, table, _ := strings.Cut(d.Name, ".")
		var n int
		require.NoError(t, db.Owner.QueryRow(context.Background(),
			fmt.Sprintf("SELECT count(*) FROM %q.%q WHERE (%s) AND $1::uuid IS NOT NULL AND $2::text[] IS NOT NULL",
				schema, table, strings.Join(conds, " OR ")), userID, emails).Scan(&n), d.Name)
		if n > 0 {
			out[d.Name] = n
		}
	}
	return out
}

// e2eData: a user with rows in every section exports all of them and no
// secret; the completeness test on the group's own database; erasure
// through DELETE /api/v1/me/data (and, for another user, DELETE
// /api/v1/auth/account) leaves nothing; the address signs up again.
// About 18 password operations.
func e2eData(t *testing.T, f *e2eServer) {
	ctx := context.Background()
	var sec secrets

	// Alice signs up (verify link), signs in, refreshes.
	f.register("alice@example.test", e2ePass1)
	verifyTok := f.mailToken("alice@example.test", "verify-email")
	sec.text("verification token", verifyTok)
	alice := decodeJSON[e2eUserBody](t, f.expect(200, "POST", authPath("/verify-email"), map[string]any{"token": verifyTok}).body).User
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", authPath("/login"), map[string]any{"email": "alice@example.test", "password": "wrong-password-1"})
	p := f.login("alice@example.test", e2ePass1)
	sec.text("access token", p.AccessToken)
	sec.text("refresh token", p.RefreshToken)
	sec.text("session cookie", p.cookie)
	sec.text("CSRF token", f.auth.svc.CSRFToken(p.cookie))
	p2 := f.refresh(p.RefreshToken)
	sec.text("refreshed access token", p2.AccessToken)
	sec.text("refreshed refresh token", p2.RefreshToken)
	a := withBearer(p2.AccessToken)

	// She moves to a new address; a guess at the old one afterwards is hers too.
	f.expect(202, "POST", authPath("/change-email"), map[string]any{"newEmail": "alice.new@example.test", "password": e2ePass1}, a)
	changeTok := f.mailToken("alice.new@example.test", "confirm-email-change")
	sec.text("change-email token", changeTok)
	f.expect(200, "POST", authPath("/verify-email"), map[string]any{"token": changeTok})
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", authPath("/login"), map[string]any{"email": "alice@example.test", "password": e2ePass1})
	f.expect(202, "POST", authPath("/forgot-password"), map[string]any{"email": "alice.new@example.test"})
	resetTok := f.mailToken("alice.new@example.test", "reset-password")
	sec.text("reset token", resetTok) // left unused: a pending reset

	// Spaces: alice's team with bob in it, an open invitation from alice,
	// and one to alice from bob's space.
	bob := f.signup("bob@example.test", e2ePass2)
	b := withBearer(f.validToken(bob.ID, bob.Email))
	team := f.guild(201, "POST", uuid.Nil, map[string]any{"name": "Team", "type": "team"}, a)
	f.invite(team.ID, bob.Email, "member", a)
	bobInvite := f.mailToken(bob.Email, "accept-invitation")
	sec.text("invitation token (accepted)", bobInvite)
	f.expect(200, "POST", guildsPath("/invitations/"+bobInvite+"/accept"), nil, b)
	f.invite(team.ID, "carol@example.test", "member", a)
	sec.text("invitation token (sent)", f.mailToken("carol@example.test", "accept-invitation"))
	club := f.guild(201, "POST", uuid.Nil, map[string]any{"name": "Club", "type": "club"}, b)
	f.invite(club.ID, "alice.new@example.test", "admin", b)
	sec.text("invitation token (received)", f.mailToken("alice.new@example.test", "accept-invitation"))

	// API keys: one live, one revoked.
	live := f.createKey(a, map[string]any{"name": "live", "scopes": []string{"read"}})
	gone := f.createKey(a, map[string]any{"name": "gone"})
	f.expect(204, "DELETE", apiKeysPath("/"+gone.APIKey.ID.String()), nil, a)
	sec.text("API key", live.Key)
	sec.text("revoked API key", gone.Key)
	assert.Equal(t, true, f.validateKey(live.Key, "read")["valid"])

	// A second factor with its recovery codes, and a sign-in waiting for
	// its second step.
	totpSecret, recoveryCodes, _ := f.mfaEnable(a, e2ePass1)
	assert.Contains(t, f.mail.WaitFor(t, "alice.new@example.test", 10*time.Second).Text, "Two-step sign-in was switched on", "the notice of the new factor")
	sec.bytes("TOTP secret", totpSecret)
	sec.text("TOTP secret (base32)", base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(totpSecret))
	for _, c := range recoveryCodes {
		sec.text("recovery code", c)
	}
	sec.text("mfaToken", f.mfaChallenge("alice.new@example.test", e2ePass1))

	// The vault, its audit, a recovery wrap; a decrypt-audit row of the AI side.
	mk := f.vaultKey(200, "POST", "/init", nil, a)
	sec.bytes("master key", mk.MasterKey)
	f.vaultKey(200, "GET", "/key", nil, a)
	recKey := randomBytes(t, 32)
	wrapped, iv := f.setRecovery(a, recKey, mk.MasterKey)
	sec.bytes("recovery wrap", wrapped)
	sec.bytes("recovery IV", iv)
	sec.bytes("recovery key", recKey)
	audit, err := grantpg.New(grantpg.Config{Pool: f.db.Runtime})
	require.NoError(t, err)
	require.NoError(t, audit.RecordUnwrap(ctx, grant.Attempt{UserID: alice.ID, MissionID: "mission-7", SignatureKID: "kid-1",
		ExpiresAt: time.Now().Add(time.Hour), Outcome: grant.OutcomeRefused, Reason: grant.ReasonExpired}))
	// A passkey and a registration challenge, written directly: this
	// server runs on http, where passkeys are off, and the export holds
	// what an earlier configuration left. Its public key is not exported.
	passkeyPub := randomBytes(t, 77)
	sec.bytes("passkey public key", passkeyPub)
	_, err = f.db.Owner.Exec(ctx, `INSERT INTO auth.passkeys (user_id, credential_id, public_key, aaguid,
		backup_eligible, backup_state, name, created_at) VALUES ($1, $2, $3, $4, true, true, 'Laptop', now())`,
		alice.ID, randomBytes(t, 32), passkeyPub, uuid.Nil)
	require.NoError(t, err)
	_, err = f.db.Owner.Exec(ctx, `INSERT INTO auth.passkey_challenges (id, ceremony, user_id, session, created_at, expires_at)
		VALUES ($1, 'register', $2, '{"challenge":"c2VjcmV0"}', now(), now() + interval '5 minutes')`, uuid.New(), alice.ID)
	require.NoError(t, err)
	f.dbSecrets(&sec, alice.ID)

	// The export: every section, no secret.
	doc, text := f.export(a)
	assert.Equal(t, alice.ID, doc.User.ID)
	assert.Equal(t, "alice.new@example.test", doc.User.Email)
	for section, atLeast := range map[string]int{
		"auth.users": 1, "auth.sessions": 1, "auth.refresh_tokens": 2, "auth.one_time_tokens": 3,
		"auth.user_emails": 2, "auth.login_attempts": 4, "auth.lockouts": 1, "auth.security_events": 8,
		"auth.spaces": 2, "auth.space_members": 2, "auth.space_invitations": 3,
		"auth.api_keys": 2, "auth.encryption_vaults": 1, "auth.encryption_vault_audit": 3,
		"mana_ai.decrypt_audit": 1, "mana_sync.sync_changes": 2,
		"auth.mfa_factors": 1, "auth.mfa_recovery_codes": 10, "auth.mfa_challenges": 1,
		"auth.passkeys": 1, "auth.passkey_challenges": 1,
	} {
		assert.GreaterOrEqual(t, len(doc.Sections[section]), atLeast, "section %s: %v", section, doc.Sections[section])
	}
	emailsOf := func(rows []map[string]any) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r["email"].(string))
		}
		return out
	}
	assert.Contains(t, emailsOf(doc.Sections["auth.login_attempts"]), "alice@example.test", "attempts on the earlier address")
	assert.Subset(t, []string{"alice@example.test", "alice.new@example.test"}, emailsOf(doc.Sections["auth.lockouts"]))
	assert.Empty(t, sec.leaked(text), "secrets in the export")
	// Positive controls: what the export must show is found by the same search.
	for _, shown := range []string{alice.ID.String(), live.APIKey.Prefix, team.ID.String(), "mission-7", "alice@example.test"} {
		assert.Contains(t, text, shown)
	}
	require.NotEmpty(t, sec.leaked(text+live.Key+hex.EncodeToString(mk.MasterKey)), "positive control: the search finds a planted secret")
	var vaultRow map[string]any
	require.Len(t, doc.Sections["auth.encryption_vaults"], 1)
	vaultRow = doc.Sections["auth.encryption_vaults"][0]
	assert.Equal(t, true, vaultRow["has_server_wrap"])
	assert.Equal(t, true, vaultRow["has_recovery_wrap"])
	assert.NotContains(t, vaultRow, "wrapped_mk")

	// Completeness: every table about users is exported or excluded on
	// purpose. A table added in this database — a user_id, an email, a
	// reference to auth.users — is found.
	assert.Empty(t, uncovered(t, f.db, doc.Sections), "tables with data about users that the export leaves out")
	for _, ddl := range []string{
		`CREATE TABLE auth.gdpr_probe_id (id int, user_id uuid)`,
		`CREATE TABLE mana_sync.gdpr_probe_mail (id int, contact_email text)`,
		`CREATE TABLE public.gdpr_probe_ref (id int, owner uuid REFERENCES auth.users (id))`,
	} {
		_, err := f.db.Owner.Exec(ctx, ddl)
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"auth.gdpr_probe_id", "mana_sync.gdpr_probe_mail", "public.gdpr_probe_ref"}, uncovered(t, f.db, doc.Sections),
		"negative control: the test finds a table nobody exports")
	_, err = f.db.Owner.Exec(ctx, `DROP TABLE auth.gdpr_probe_id, mana_sync.gdpr_probe_mail, public.gdpr_probe_ref`)
	require.NoError(t, err)

	// Erasure. The only owner of a space with members is refused first.
	emails := []string{"alice@example.test", "alice.new@example.test"}
	before := rowsAbout(t, f.db, alice.ID, emails)
	for _, s := range []string{"auth.users", "auth.login_attempts", "auth.lockouts", "auth.space_invitations", "auth.api_keys",
		"mana_ai.decrypt_audit", "auth.mfa_factors", "auth.mfa_recovery_codes", "auth.mfa_challenges",
		"auth.passkeys", "auth.passkey_challenges"} {
		require.Positive(t, before[s], "positive control: %s has rows about alice before", s)
	}
	e := f.expectCode(409, "CONFLICT", "DELETE", dataPath, map[string]any{"password": e2ePass1}, a)
	assert.Equal(t, "sole_owner", e.Details["reason"])
	after := rowsAbout(t, f.db, alice.ID, emails)
	assert.Equal(t, before["auth.login_attempts"]+1, after["auth.login_attempts"], "the password check is recorded")
	for _, s := range []string{"auth.login_attempts", "auth.lockouts", "auth.security_events"} {
		delete(before, s)
		delete(after, s)
	}
	assert.Equal(t, before, after, "a refused erasure erases nothing")
	f.expect(200, "PATCH", guildsPath("/"+team.ID.String()+"/members/"+bob.ID.String()), map[string]any{"role": "owner"}, a)
	f.expectCode(401, "INVALID_CREDENTIALS", "DELETE", dataPath, map[string]any{"password": "not-her-password"}, a)
	events := f.count(`SELECT count(*) FROM auth.security_events WHERE user_id = $1`, alice.ID)
	anonymous := f.count(`SELECT count(*) FROM auth.security_events WHERE user_id IS NULL AND ip_address IS NULL AND user_agent IS NULL AND metadata IS NULL`)
	f.expect(204, "DELETE", dataPath, map[string]any{"password": e2ePass1}, a)
	assert.Empty(t, rowsAbout(t, f.db, alice.ID, emails), "rows with alice's id or addresses after the erasure")
	assert.Equal(t, anonymous+events+1, f.count(`SELECT count(*) FROM auth.security_events
		WHERE user_id IS NULL AND ip_address IS NULL AND user_agent IS NULL AND metadata IS NULL`),
		"her events stay anonymised (type and time), plus the LOGIN_SUCCESS of the deletion's password check")
	assert.Equal(t, 1, f.count(`SELECT count(*) FROM auth.security_events WHERE event_type = 'ACCOUNT_DELETED'`))
	assert.Equal(t, map[string]any{"valid": false, "reason": "unknown"}, f.validateKey(live.Key, ""), "her keys are gone")
	assert.True(t, f.spaceExists(team.ID), "the team stays with its new owner")
	f.expectCode(404, "NOT_FOUND", "GET", dataPath, nil, a)

	// The address signs up again as a new account, with nothing of the old one.
	again := f.signup("alice.new@example.test", e2ePass3)
	assert.NotEqual(t, alice.ID, again.ID)
	fresh := withBearer(f.login("alice.new@example.test", e2ePass3).AccessToken)
	doc2, _ := f.export(fresh)
	assert.Len(t, doc2.Sections["auth.login_attempts"], 1, "only the new login: %v", doc2.Sections["auth.login_attempts"])
	assert.Empty(t, doc2.Sections["auth.api_keys"])
	for range 4 { // 5 per hour
		f.export(fresh)
	}
	f.expectCode(429, "RATE_LIMITED", "GET", dataPath, nil, fresh)

	// Issue 13, item 11: DELETE /api/v1/auth/account erases the same
	// way. Before the erasure hook, carol's login attempts and her lockout
	// counter (keyed by her address) outlived her account.
	carol := f.signup("carol@example.test", e2ePass2)
	f.expectCode(401, "INVALID_CREDENTIALS", "POST", authPath("/login"), map[string]any{"email": carol.Email, "password": "wrong-password-2"})
	c := withBearer(f.login(carol.Email, e2ePass2).AccessToken)
	require.Positive(t, f.count(`SELECT count(*) FROM auth.login_attempts WHERE email = $1`, carol.Email))
	require.Positive(t, f.count(`SELECT count(*) FROM auth.lockouts WHERE email = $1`, carol.Email))
	f.expect(204, "DELETE", authPath("/account"), map[string]any{"password": e2ePass2}, c)
	assert.Empty(t, rowsAbout(t, f.db, carol.ID, []string{carol.Email}))
	assert.Zero(t, f.count(`SELECT count(*) FROM auth.login_attempts WHERE email = $1`, carol.Email))
	assert.Zero(t, f.count(`SELECT count(*) FROM auth.lockouts WHERE email = $1`, carol.Email))
}
