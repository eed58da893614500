package spaces_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/mailtest"
	"github.com/mana-how/mana-auth/spaces"
)

// Guards: every user gets exactly one Personal space, in the registration
// transaction (the SpaceCreated hook sees it through the transaction it is
// handed, with its owner), listed first with the caller's role; it can be
// neither deleted nor shared, and the database refuses a second one.
func TestSpacesPersonalSpaceAtSignup(t *testing.T) {
	t.Parallel()
	type call struct {
		space, owner uuid.UUID
		typ, role    string
	}
	var mu sync.Mutex
	var calls []call
	g := newSpFixture(t, spOptions{hooks: spaces.Hooks{
		SpaceCreated: func(ctx context.Context, tx pgx.Tx, spaceID, ownerID uuid.UUID) error {
			c := call{space: spaceID, owner: ownerID}
			// Uncommitted: only the creating transaction sees these rows.
			err := tx.QueryRow(ctx, `SELECT s.type, m.role FROM auth.spaces s
				JOIN auth.space_members m ON m.space_id = s.id AND m.user_id = $2 WHERE s.id = $1`, spaceID, ownerID).Scan(&c.typ, &c.role)
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
			return err
		},
	}})
	alice := g.user(t, "alice@x.com")

	st, body := g.as(t, alice, "GET", "/", nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	guilds, _ := body["guilds"].([]any)
	require.Len(t, guilds, 1, "%v", body)
	personal := guilds[0].(map[string]any)
	assert.Equal(t, "personal", personal["type"])
	assert.Equal(t, "owner", personal["role"])
	assert.Equal(t, spaces.PersonalName, personal["name"])
	assert.ElementsMatch(t, []string{"id", "name", "type", "role", "createdAt"}, keys(personal))
	pid := personal["id"].(string)

	mu.Lock()
	require.Equal(t, []call{{space: uuid.MustParse(pid), owner: alice.ID, typ: "personal", role: "owner"}}, calls,
		"the hook ran once, inside the registration transaction")
	mu.Unlock()
	assert.Zero(t, g.hookFailures(t, "space_created"))

	// A team space comes after it in the list.
	team := g.createSpace(t, alice, "Alpha Team", "team")
	st, body = g.as(t, alice, "GET", "", nil) // the root without its slash
	require.Equal(t, http.StatusOK, st, "%v", body)
	guilds, _ = body["guilds"].([]any)
	require.Len(t, guilds, 2, "%v", body)
	assert.Equal(t, pid, guilds[0].(map[string]any)["id"])
	assert.Equal(t, team, guilds[1].(map[string]any)["id"])

	st, body = g.as(t, alice, "DELETE", "/"+pid, nil)
	requireError(t, st, body, http.StatusForbidden, "FORBIDDEN")
	st, body = g.as(t, alice, "POST", "/"+pid+"/invitations", map[string]any{"email": "bob@x.com", "role": "member"})
	requireError(t, st, body, http.StatusForbidden, "FORBIDDEN")
	st, body = g.as(t, alice, "DELETE", "/"+pid+"/members/"+alice.ID.String(), nil)
	requireError(t, st, body, http.StatusConflict, "CONFLICT")
	assert.Equal(t, "last_owner", spReason(body))
	st, body = g.as(t, alice, "GET", "/"+pid, nil)
	require.Equal(t, http.StatusOK, st, "the Personal space survived: %v", body)

	_, err := g.db.Owner.Exec(bg, `INSERT INTO auth.spaces (name, type, created_at, created_by) VALUES ('Second', 'personal', now(), $1)`, alice.ID)
	var pg interface{ SQLState() string }
	require.ErrorAs(t, err, &pg, "the database refuses a second Personal space")
	assert.Equal(t, "23505", pg.SQLState())
	assert.Equal(t, 1, g.ownerInt(t, `SELECT count(*) FROM auth.spaces WHERE created_by = $1 AND type = 'personal'`, alice.ID))
}

// Guards: a failing SpaceCreated hook (a bootstrap outage) fails neither
// the signup nor POST /guilds: its own writes are rolled back to a
// savepoint, the space stands, and the failure is counted. A hook that
// succeeds has its writes committed with the space.
func TestSpacesCreatedHookFailureDoesNotFailCreation(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	failing := true
	g := newSpFixture(t, spOptions{hooks: spaces.Hooks{
		SpaceCreated: func(ctx context.Context, tx pgx.Tx, spaceID, _ uuid.UUID) error {
			if _, err := tx.Exec(ctx, `UPDATE auth.spaces SET name = name || ' (hooked)' WHERE id = $1`, spaceID); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if failing {
				return errors.New("bootstrap: mana_sync is unreachable")
			}
			return nil
		},
	}})
	alice := g.user(t, "alice@x.com")
	assert.Equal(t, float64(1), g.hookFailures(t, "space_created"))
	st, body := g.as(t, alice, "GET", "/", nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	guilds, _ := body["guilds"].([]any)
	require.Len(t, guilds, 1, "the signup made the Personal space despite the hook: %v", body)
	assert.Equal(t, spaces.PersonalName, guilds[0].(map[string]any)["name"], "the failed hook's write is rolled back")

	failed := g.createSpace(t, alice, "Failing", "club")
	assert.Equal(t, float64(2), g.hookFailures(t, "space_created"))
	mu.Lock()
	failing = false
	mu.Unlock()
	working := g.createSpace(t, alice, "Working", "club")
	assert.Equal(t, float64(2), g.hookFailures(t, "space_created"))

	var name string
	require.NoError(t, g.db.Owner.QueryRow(bg, `SELECT name FROM auth.spaces WHERE id = $1`, failed).Scan(&name))
	assert.Equal(t, "Failing", name, "the failed hook's write is rolled back")
	require.NoError(t, g.db.Owner.QueryRow(bg, `SELECT name FROM auth.spaces WHERE id = $1`, working).Scan(&name))
	assert.Equal(t, "Working (hooked)", name, "a hook that succeeds commits with the space")
	assert.Equal(t, 1, g.ownerInt(t, `SELECT count(*) FROM auth.space_members WHERE space_id = $1 AND role = 'owner'`, failed))
}

// Guards: the create and rename validation — names trimmed to 1..100
// characters without control or bidi characters and not looking like a
// link (they are shown in invitation mails); only the canonical type
// names, never personal. A refused request stores nothing.
func TestSpacesCreateAndRenameValidation(t *testing.T) {
	t.Parallel()
	g := newSpFixture(t, spOptions{})
	alice := g.user(t, "alice@x.com")
	team := g.createSpace(t, alice, "Team", "team")

	ok := []struct{ name, typ, stored string }{
		{"  Padded  ", "brand", "Padded"},
		{strings.Repeat("é", 100), "club", strings.Repeat("é", 100)},
		{"👨‍👩‍👧 The Millers", "family", "👨‍👩‍👧 The Millers"},
		{"St. Mary's practice v2.0", "practice", "St. Mary's practice v2.0"},
		{"Team", "team", "Team"},
	}
	for _, c := range ok {
		st, body := g.as(t, alice, "POST", "/", map[string]any{"name": c.name, "type": c.typ})
		require.Equal(t, http.StatusCreated, st, "create %q %q: %v", c.name, c.typ, body)
		gd := spGuild(t, body)
		assert.Equal(t, c.stored, gd["name"])
		assert.Equal(t, c.typ, gd["type"])
		assert.Equal(t, "owner", gd["role"])
	}
	spaces := g.ownerInt(t, `SELECT count(*) FROM auth.spaces`)

	bad := []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"empty body", map[string]any{}, []string{"name", "type"}},
		{"blank name", map[string]any{"name": "   ", "type": "team"}, []string{"name"}},
		{"101 characters", map[string]any{"name": strings.Repeat("a", 101), "type": "team"}, []string{"name"}},
		{"line break", map[string]any{"name": "a\nb", "type": "team"}, []string{"name"}},
		{"NUL", map[string]any{"name": "a\x00b", "type": "team"}, []string{"name"}},
		{"bidi override", map[string]any{"name": "abc\u202egpj.exe", "type": "team"}, []string{"name"}},
		{"line separator", map[string]any{"name": "a\u2028b", "type": "team"}, []string{"name"}},
		{"URL", map[string]any{"name": "join https://evil.example", "type": "team"}, []string{"name"}},
		{"www", map[string]any{"name": "www.evil", "type": "team"}, []string{"name"}},
		{"host name", map[string]any{"name": "Visit evil.com now", "type": "team"}, []string{"name"}},
		{"address", map[string]any{"name": "mail boss@evil.co", "type": "team"}, []string{"name"}},
		{"personal", map[string]any{"name": "Mine", "type": "personal"}, []string{"type"}},
		{"capitalised type", map[string]any{"name": "Mine", "type": "Team"}, []string{"type"}},
		{"padded type", map[string]any{"name": "Mine", "type": " team"}, []string{"type"}},
		{"unknown type", map[string]any{"name": "Mine", "type": "company"}, []string{"type"}},
		{"both", map[string]any{"name": "", "type": "guild"}, []string{"name", "type"}},
	}
	for _, c := range bad {
		st, body := g.as(t, alice, "POST", "/", c.body)
		requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
		assert.ElementsMatch(t, c.fields, keys(errFields(body)), "%s: %v", c.name, body)

		if _, hasName := c.body["name"]; hasName && len(c.fields) == 1 && c.fields[0] == "name" {
			before := g.state(t, team)
			st, body = g.as(t, alice, "PATCH", "/"+team, map[string]any{"name": c.body["name"]})
			requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
			assert.Equal(t, before, g.state(t, team), "%s: a refused rename changes nothing", c.name)
		}
	}
	assert.Equal(t, spaces, g.ownerInt(t, `SELECT count(*) FROM auth.spaces`), "refused creations store nothing")

	st, body := g.as(t, alice, "POST", "/", "not an object")
	requireError(t, st, body, http.StatusBadRequest, "BAD_REQUEST")

	st, body = g.as(t, alice, "PATCH", "/"+team, map[string]any{"name": " Renamed "})
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "Renamed", spGuild(t, body)["name"])
	st, body = g.as(t, alice, "GET", "/"+team, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "Renamed", spGuild(t, body)["name"])

	// The database keeps the same invariants for any other writer.
	for _, stmt := range []string{
		`INSERT INTO auth.spaces (name, type, created_at) VALUES (' x', 'team', now())`,
		`INSERT INTO auth.spaces (name, type, created_at) VALUES ('x', 'Team', now())`,
		`INSERT INTO auth.spaces (name, type, created_at) VALUES ('', 'team', now())`,
	} {
		_, err := g.db.Owner.Exec(bg, stmt)
		var pg interface{ SQLState() string }
		require.ErrorAs(t, err, &pg, stmt)
		assert.Equal(t, "23514", pg.SQLState(), stmt)
	}
}

// spWorld is a team space with an owner, an admin and a member (joined
// through real invitations), and an outsider with spaces of their own.
type spWorld struct {
	g                           *spFixture
	space                       string
	owner, admin, member, other spUser
}

func newSpWorld(t *testing.T) *spWorld {
	t.Helper()
	g := newSpFixture(t, spOptions{})
	w := &spWorld{g: g,
		owner: g.user(t, "owner@x.com"), admin: g.user(t, "admin@x.com"),
		member: g.user(t, "member@x.com"), other: g.user(t, "other@x.com")}
	w.space = g.createSpace(t, w.owner, "Crew", "team")
	g.join(t, w.owner, w.space, w.admin, "admin")
	g.join(t, w.owner, w.space, w.member, "member")
	return w
}

func (w *spWorld) who(name string) spUser {
	return map[string]spUser{"owner": w.owner, "admin": w.admin, "member": w.member, "other": w.other}[name]
}

// Guards: every role rule of api.md and the issue — owners do
// everything; admins rename, invite and manage non-owners but can neither
// make nor change an owner; members change nothing but may leave; the last
// owner can neither leave nor step down. Every refusal changes nothing and
// sends no mail.
func TestSpacesRoleRules(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		as    string
		setup func(t *testing.T, w *spWorld)
		do    func(w *spWorld) (method, path string, body any)
		want  int
		code  string
		check func(t *testing.T, w *spWorld, body map[string]any)
	}
	role := func(target, role string) func(w *spWorld) (string, string, any) {
		return func(w *spWorld) (string, string, any) {
			return "PATCH", "/" + w.space + "/members/" + w.who(target).ID.String(), map[string]any{"role": role}
		}
	}
	remove := func(target string) func(w *spWorld) (string, string, any) {
		return func(w *spWorld) (string, string, any) {
			return "DELETE", "/" + w.space + "/members/" + w.who(target).ID.String(), nil
		}
	}
	invite := func(role string) func(w *spWorld) (string, string, any) {
		return func(w *spWorld) (string, string, any) {
			return "POST", "/" + w.space + "/invitations", map[string]any{"email": "new@x.com", "role": role}
		}
	}
	space := func(method string, body any) func(w *spWorld) (string, string, any) {
		return func(w *spWorld) (string, string, any) { return method, "/" + w.space, body }
	}
	hasRole := func(target, want string) func(t *testing.T, w *spWorld, _ map[string]any) {
		return func(t *testing.T, w *spWorld, _ map[string]any) {
			assert.Equal(t, want, w.g.role(t, w.space, w.who(target)), "role of %s", target)
		}
	}
	secondOwner := func(t *testing.T, w *spWorld) {
		w.g.join(t, w.owner, w.space, w.other, "owner")
	}
	cases := []tc{
		{name: "member reads the space", as: "member", do: space("GET", nil), want: 200,
			check: func(t *testing.T, _ *spWorld, b map[string]any) { assert.Equal(t, "member", spGuild(t, b)["role"]) }},
		{name: "member lists members", as: "member", do: func(w *spWorld) (string, string, any) { return "GET", "/" + w.space + "/members", nil }, want: 200,
			check: func(t *testing.T, w *spWorld, b map[string]any) {
				ms, _ := b["members"].([]any)
				require.Len(t, ms, 3, "%v", b)
				var roles []string
				for _, m := range ms {
					mm := m.(map[string]any)
					assert.ElementsMatch(t, []string{"userId", "email", "name", "role", "joinedAt"}, keys(mm))
					roles = append(roles, mm["role"].(string))
				}
				assert.Equal(t, []string{"owner", "admin", "member"}, roles, "owners first")
			}},
		{name: "owner renames", as: "owner", do: space("PATCH", map[string]any{"name": "Renamed"}), want: 200},
		{name: "admin renames", as: "admin", do: space("PATCH", map[string]any{"name": "Renamed"}), want: 200},
		{name: "member cannot rename", as: "member", do: space("PATCH", map[string]any{"name": "Renamed"}), want: 403, code: "FORBIDDEN"},
		{name: "owner deletes", as: "owner", do: space("DELETE", nil), want: 204,
			check: func(t *testing.T, w *spWorld, _ map[string]any) {
				assert.Zero(t, w.g.ownerInt(t, `SELECT count(*) FROM auth.spaces WHERE id = $1`, w.space))
				assert.Zero(t, w.g.ownerInt(t, `SELECT count(*) FROM auth.space_members WHERE space_id = $1`, w.space))
				assert.Zero(t, w.g.ownerInt(t, `SELECT count(*) FROM auth.space_invitations WHERE space_id = $1`, w.space))
				assert.Equal(t, 4, w.g.ownerInt(t, `SELECT count(*) FROM auth.spaces WHERE type = 'personal'`), "other spaces stay")
			}},
		{name: "admin cannot delete", as: "admin", do: space("DELETE", nil), want: 403, code: "FORBIDDEN"},
		{name: "member cannot delete", as: "member", do: space("DELETE", nil), want: 403, code: "FORBIDDEN"},
		{name: "owner invites an owner", as: "owner", do: invite("owner"), want: 201},
		{name: "admin invites an admin", as: "admin", do: invite("admin"), want: 201},
		{name: "admin invites a member", as: "admin", do: invite("member"), want: 201},
		{name: "admin cannot invite an owner", as: "admin", do: invite("owner"), want: 403, code: "FORBIDDEN"},
		{name: "member cannot invite", as: "member", do: invite("member"), want: 403, code: "FORBIDDEN"},
		{name: "owner cannot invite a member again", as: "owner",
			do: func(w *spWorld) (string, string, any) {
				return "POST", "/" + w.space + "/invitations", map[string]any{"email": " MEMBER@x.com", "role": "admin"}
			}, want: 409, code: "CONFLICT"},
		{name: "member cannot list invitations", as: "member",
			do: func(w *spWorld) (string, string, any) { return "GET", "/" + w.space + "/invitations", nil }, want: 403, code: "FORBIDDEN"},
		{name: "admin lists invitations", as: "admin",
			do: func(w *spWorld) (string, string, any) { return "GET", "/" + w.space + "/invitations", nil }, want: 200},
		{name: "owner makes the member an admin", as: "owner", do: role("member", "admin"), want: 200, check: hasRole("member", "admin")},
		{name: "owner makes the admin an owner", as: "owner", do: role("admin", "owner"), want: 200, check: hasRole("admin", "owner")},
		{name: "owner demotes the admin", as: "owner", do: role("admin", "member"), want: 200, check: hasRole("admin", "member")},
		{name: "admin makes the member an admin", as: "admin", do: role("member", "admin"), want: 200,
			check: func(t *testing.T, w *spWorld, b map[string]any) {
				m, _ := b["member"].(map[string]any)
				assert.Equal(t, w.member.ID.String(), m["userId"])
				assert.Equal(t, "member@x.com", m["email"])
				assert.Equal(t, "admin", m["role"])
				assert.Equal(t, "admin", w.g.role(t, w.space, w.member))
			}},
		{name: "admin steps down", as: "admin", do: role("admin", "member"), want: 200, check: hasRole("admin", "member")},
		{name: "admin cannot make an owner", as: "admin", do: role("member", "owner"), want: 403, code: "FORBIDDEN"},
		{name: "admin cannot make itself owner", as: "admin", do: role("admin", "owner"), want: 403, code: "FORBIDDEN"},
		{name: "admin cannot change an owner", as: "admin", do: role("owner", "member"), want: 403, code: "FORBIDDEN"},
		{name: "admin cannot change an owner to owner", as: "admin", do: role("owner", "owner"), want: 403, code: "FORBIDDEN"},
		{name: "member cannot change roles", as: "member", do: role("admin", "member"), want: 403, code: "FORBIDDEN"},
		{name: "member cannot promote itself", as: "member", do: role("member", "admin"), want: 403, code: "FORBIDDEN"},
		{name: "role of a non-member", as: "owner", do: role("other", "admin"), want: 404, code: "NOT_FOUND"},
		{name: "last owner cannot step down", as: "owner", do: role("owner", "admin"), want: 409, code: "CONFLICT"},
		{name: "an owner steps down beside another", as: "owner", setup: secondOwner, do: role("owner", "admin"), want: 200,
			check: hasRole("owner", "admin")},
		{name: "owner removes the admin", as: "owner", do: remove("admin"), want: 204, check: hasRole("admin", "")},
		{name: "owner removes the member", as: "owner", do: remove("member"), want: 204, check: hasRole("member", "")},
		{name: "owner removes another owner", as: "owner", setup: secondOwner, do: remove("other"), want: 204, check: hasRole("other", "")},
		{name: "admin removes the member", as: "admin", do: remove("member"), want: 204, check: hasRole("member", "")},
		{name: "admin cannot remove an owner", as: "admin", do: remove("owner"), want: 403, code: "FORBIDDEN"},
		{name: "member cannot remove the admin", as: "member", do: remove("admin"), want: 403, code: "FORBIDDEN"},
		{name: "member leaves", as: "member", do: remove("member"), want: 204, check: hasRole("member", "")},
		{name: "admin leaves", as: "admin", do: remove("admin"), want: 204, check: hasRole("admin", "")},
		{name: "last owner cannot leave", as: "owner", do: remove("owner"), want: 409, code: "CONFLICT"},
		{name: "an owner leaves beside another", as: "owner", setup: secondOwner, do: remove("owner"), want: 204, check: hasRole("owner", "")},
		{name: "remove a non-member", as: "owner", do: remove("other"), want: 404, code: "NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newSpWorld(t)
			if c.setup != nil {
				c.setup(t, w)
			}
			before := w.g.state(t, w.space)
			method, path, body := c.do(w)
			st, out := w.g.as(t, w.who(c.as), method, path, body)
			require.Equal(t, c.want, st, "%s %s as %s: %v", method, path, c.as, out)
			if c.code != "" {
				assert.Equal(t, c.code, errCode(out), "%v", out)
				assert.Equal(t, before, w.g.state(t, w.space), "a refused request changes nothing")
				if strings.Contains(path, "/invitations") {
					w.g.settleMail(t)
					assert.Zero(t, w.g.mailsTo("new@x.com"), "a refused invitation is not mailed")
				}
			}
			if c.code == "CONFLICT" && strings.Contains(c.name, "last owner") {
				assert.Equal(t, "last_owner", spReason(out))
			}
			if c.check != nil {
				c.check(t, w, out)
			}
		})
	}
}

// Guards: roles and types are validated, in their canonical spelling
// only, before anything is read or stored: " owner", "Owner" and unknown
// roles answer 400 VALIDATION_FAILED naming the field — even from a caller
// who could not change the space at all — store nothing and mail nothing;
// the database refuses non-canonical roles from any writer.
func TestSpacesRoleCanonicalisation(t *testing.T) {
	t.Parallel()
	w := newSpWorld(t)
	g := w.g
	bad := []string{" owner", "owner ", "Owner", "OWNER", "Admin", "member\n", "", "superuser", "owner\x00", "ownér", "0"}
	before := g.state(t, w.space)
	for _, r := range bad {
		for _, as := range []spUser{w.owner, w.member, w.other} {
			st, body := g.as(t, as, "PATCH", "/"+w.space+"/members/"+w.member.ID.String(), map[string]any{"role": r})
			requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
			assert.Contains(t, errFields(body), "role", "role %q: %v", r, body)
			st, body = g.as(t, as, "POST", "/"+w.space+"/invitations", map[string]any{"email": "new@x.com", "role": r})
			requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
			assert.Equal(t, []string{"role"}, keys(errFields(body)), "role %q: %v", r, body)
		}
	}
	st, body := g.as(t, w.owner, "POST", "/"+w.space+"/invitations", map[string]any{"email": "not-an-address", "role": "Owner"})
	requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	assert.ElementsMatch(t, []string{"email", "role"}, keys(errFields(body)))
	st, body = g.as(t, w.owner, "POST", "/"+w.space+"/invitations", map[string]any{"email": "new@x.com"})
	requireError(t, st, body, http.StatusBadRequest, "VALIDATION_FAILED")
	assert.Equal(t, []string{"role"}, keys(errFields(body)))
	st, body = g.as(t, w.owner, "PATCH", "/"+w.space+"/members/"+w.member.ID.String(), map[string]any{"role": 1})
	requireError(t, st, body, http.StatusBadRequest, "BAD_REQUEST")

	assert.Equal(t, before, g.state(t, w.space), "nothing stored")
	g.settleMail(t)
	assert.Zero(t, g.mailsTo("new@x.com"), "nothing mailed")

	// The service checks before it looks at the space: a caller of no
	// space at all, for a space that does not exist, gets the 400.
	_, err := g.svc.SetRole(bg, uuid.New(), uuid.New(), uuid.New(), spaces.Role(" owner"))
	require.Equal(t, autherr.ValidationFailed, autherr.CodeOf(err), "%v", err)
	_, err = g.svc.Invite(bg, uuid.New(), uuid.New(), "a@x.com", spaces.Role("Owner"))
	require.Equal(t, autherr.ValidationFailed, autherr.CodeOf(err), "%v", err)
	_, err = g.svc.CreateSpace(bg, w.owner.ID, "Fine", spaces.Type("Team"))
	require.Equal(t, autherr.ValidationFailed, autherr.CodeOf(err), "%v", err)
	for _, r := range []spaces.Role{spaces.RoleOwner, spaces.RoleAdmin, spaces.RoleMember} {
		assert.True(t, r.Valid(), r)
	}

	for _, stmt := range []string{
		`UPDATE auth.space_members SET role = 'Owner' WHERE space_id = $1`,
		`UPDATE auth.space_members SET role = ' owner' WHERE space_id = $1`,
		`UPDATE auth.space_invitations SET role = 'ADMIN' WHERE space_id = $1`,
	} {
		_, err := g.db.Owner.Exec(bg, stmt, w.space)
		var pg interface{ SQLState() string }
		require.ErrorAs(t, err, &pg, stmt)
		assert.Equal(t, "23514", pg.SQLState(), stmt)
	}
}

// Guards: the invitation mail and token — one link
// <base>/accept-invitation?token=…, naming the space and the inviter; the
// token 256 bits, stored only as its SHA-256; inviting the address again
// revokes the open invitation (its link stops working); accepting makes
// the invitee a member with the invitation's role and lists the space.
func TestSpacesInvitationMailAndAccept(t *testing.T) {
	t.Parallel()
	g := newSpFixture(t, spOptions{})
	owner := g.user(t, "owner@x.com")
	bob := g.user(t, "bob@x.com")
	_, err := g.db.Owner.Exec(bg, `UPDATE auth.users SET name = 'Olivia' WHERE id = $1`, owner.ID)
	require.NoError(t, err)
	space := g.createSpace(t, owner, "Book Club", "club")

	st, body := g.as(t, owner, "POST", "/"+space+"/invitations", map[string]any{"email": " BOB@X.com ", "role": "admin"})
	require.Equal(t, http.StatusCreated, st, "%v", body)
	inv := body["invitation"].(map[string]any)
	assert.Equal(t, "bob@x.com", inv["email"])
	assert.Equal(t, "admin", inv["role"])
	exp, err := time.Parse(time.RFC3339, inv["expiresAt"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, g.clock.Now().Add(7*24*time.Hour), exp, time.Second, "expires in 7 days")
	for _, k := range []string{"id", "email", "role", "expiresAt"} {
		assert.Contains(t, inv, k)
	}

	m := g.smtp.WaitFor(t, "bob@x.com", mailWait)
	assert.Contains(t, m.Subject, "Olivia")
	assert.Contains(t, m.Subject, "Book Club")
	assert.Contains(t, m.Text, "https://app.test.example/auth/accept-invitation?token=")
	firstTok := mailtest.TokenFromText(t, m.Text, "accept-invitation")

	// Inviting again revokes the first invitation.
	st, body = g.as(t, owner, "POST", "/"+space+"/invitations", map[string]any{"email": "bob@x.com", "role": "member"})
	require.Equal(t, http.StatusCreated, st, "%v", body)
	secondTok := g.mailToken(t, "bob@x.com", "accept-invitation")
	require.NotEqual(t, firstTok, secondTok)
	assert.GreaterOrEqual(t, len(secondTok), 43, "at least 256 bits of URL-safe base64")

	var stored []byte
	require.NoError(t, g.db.Owner.QueryRow(bg, `SELECT token_hash FROM auth.space_invitations WHERE space_id = $1 AND revoked_at IS NULL`, space).Scan(&stored))
	assert.Equal(t, sessSHA256(secondTok), stored, "only the SHA-256 is stored")
	assert.Zero(t, g.ownerInt(t, `SELECT count(*) FROM auth.space_invitations WHERE position(convert_to($1, 'UTF8') IN token_hash) > 0`, secondTok))

	st, body = g.as(t, bob, "POST", "/invitations/"+firstTok+"/accept", nil)
	requireError(t, st, body, http.StatusConflict, "CONFLICT")
	assert.Equal(t, "revoked", spReason(body))
	assert.Equal(t, "", g.role(t, space, bob))

	st, body = g.as(t, bob, "POST", "/invitations/"+secondTok+"/accept", map[string]any{})
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "member", body["role"])
	gd := spGuild(t, body)
	assert.Equal(t, space, gd["id"])
	assert.Equal(t, "Book Club", gd["name"])
	assert.Equal(t, "member", gd["role"])
	assert.Equal(t, "member", g.role(t, space, bob))
	var acceptedBy uuid.UUID
	require.NoError(t, g.db.Owner.QueryRow(bg, `SELECT accepted_by FROM auth.space_invitations WHERE token_hash = $1`, sessSHA256(secondTok)).Scan(&acceptedBy))
	assert.Equal(t, bob.ID, acceptedBy)

	st, body = g.as(t, bob, "GET", "/", nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	guilds, _ := body["guilds"].([]any)
	require.Len(t, guilds, 2, "Personal and the club: %v", body)
	assert.Equal(t, "personal", guilds[0].(map[string]any)["type"])
	assert.Equal(t, space, guilds[1].(map[string]any)["id"])

	// Reuse, by the same account.
	st, body = g.as(t, bob, "POST", "/invitations/"+secondTok+"/accept", nil)
	requireError(t, st, body, http.StatusConflict, "CONFLICT")
	assert.Equal(t, "accepted", spReason(body))
	assert.Equal(t, 2, g.ownerInt(t, `SELECT count(*) FROM auth.space_members WHERE space_id = $1`, space))

	// Tokens that are no token, or nobody's.
	for _, tok := range []string{"x", strings.Repeat("A", 43), strings.Repeat("a", 200), "not%20a%20token", flipLast(secondTok)} {
		st, body = g.as(t, bob, "POST", "/invitations/"+tok+"/accept", nil)
		requireError(t, st, body, http.StatusNotFound, "NOT_FOUND")
	}
}

// Guards: an invitation stops working after 7 days (the clock moves 8),
// after revocation, and when the inviter lost the right to issue it;
// revoking twice is harmless, revoking an accepted one a conflict; the
// list shows open invitations with their status.
func TestSpacesInvitationExpiryAndRevocation(t *testing.T) {
	t.Parallel()
	w := newSpWorld(t)
	g := w.g
	expiring, expTok := g.invite(t, w.owner, w.space, "late@x.com", "member")
	late := g.user(t, "late@x.com")

	revoked, revTok := g.invite(t, w.owner, w.space, "other@x.com", "member")
	st, body := g.as(t, w.owner, "DELETE", "/"+w.space+"/invitations/"+revoked, nil)
	require.Equal(t, http.StatusNoContent, st, "%v", body)
	st, body = g.as(t, w.owner, "DELETE", "/"+w.space+"/invitations/"+revoked, nil)
	require.Equal(t, http.StatusNoContent, st, "revoking twice: %v", body)
	st, body = g.as(t, w.other, "POST", "/invitations/"+revTok+"/accept", nil)
	requireError(t, st, body, http.StatusConflict, "CONFLICT")
	assert.Equal(t, "revoked", spReason(body))
	assert.Equal(t, "", g.role(t, w.space, w.other))

	// The admin's invitation dies with the admin's rights.
	_, demotedTok := g.invite(t, w.admin, w.space, "other@x.com", "admin")
	st, body = g.as(t, w.owner, "PATCH", "/"+w.space+"/members/"+w.admin.ID.String(), map[string]any{"role": "member"})
	require.Equal(t, http.StatusOK, st, "%v", body)
	st, body = g.as(t, w.other, "POST", "/invitations/"+demotedTok+"/accept", nil)
	requireError(t, st, body, http.StatusConflict, "CONFLICT")
	assert.Equal(t, "revoked", spReason(body))
	assert.Equal(t, "", g.role(t, w.space, w.other))

	// An accepted invitation cannot be revoked.
	acceptedID, accTok := g.invite(t, w.owner, w.space, "other@x.com", "member")
	st, body = g.as(t, w.other, "POST", "/invitations/"+accTok+"/accept", nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	st, body = g.as(t, w.owner, "DELETE", "/"+w.space+"/invitations/"+acceptedID, nil)
	requireError(t, st, body, http.StatusConflict, "CONFLICT")
	assert.Equal(t, "accepted", spReason(body))

	st, body = g.as(t, w.owner, "GET", "/"+w.space+"/invitations", nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	invs, _ := body["invitations"].([]any)
	require.Len(t, invs, 1, "only the open invitation: %v", body)
	assert.Equal(t, expiring, invs[0].(map[string]any)["id"])
	assert.Equal(t, "pending", invs[0].(map[string]any)["status"])

	g.clock.Advance(8 * 24 * time.Hour)
	st, body = g.as(t, late, "POST", "/invitations/"+expTok+"/accept", nil)
	requireError(t, st, body, http.StatusConflict, "CONFLICT")
	assert.Equal(t, "expired", spReason(body))
	assert.Equal(t, "", g.role(t, w.space, late))
	st, body = g.as(t, w.owner, "GET", "/"+w.space+"/invitations", nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	invs, _ = body["invitations"].([]any)
	require.Len(t, invs, 1, "%v", body)
	assert.Equal(t, "expired", invs[0].(map[string]any)["status"])

	// A fresh invitation works again.
	_, again := g.invite(t, w.owner, w.space, "late@x.com", "member")
	st, body = g.as(t, late, "POST", "/invitations/"+again+"/accept", nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "member", g.role(t, w.space, late))
}

// Guards: accepting needs a verified account whose address is the
// invitation's: another address or an unverified account gets 403
// FORBIDDEN, and the invitation stays open for the right person.
func TestSpacesAcceptNeedsVerifiedMatchingAccount(t *testing.T) {
	t.Parallel()
	g := newSpFixture(t, spOptions{noVerification: true})
	owner := g.user(t, "owner@x.com")
	wrong := g.user(t, "wrong@x.com")
	space := g.createSpace(t, owner, "Crew", "team")

	// Registered, not verified yet: register answers a token pair.
	st, body, _ := g.call(t, "POST", "/register", map[string]any{"email": "carol@x.com", "password": strongPassword}, nil)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	carol := spUser{ID: uuid.MustParse(userOf(t, body)["id"].(string)), Email: "carol@x.com"}
	verifyTok := g.mailToken(t, "carol@x.com", "verify-email")

	_, tok := g.invite(t, owner, space, "carol@x.com", "member")
	before := g.state(t, space)

	st, body = g.as(t, wrong, "POST", "/invitations/"+tok+"/accept", nil)
	requireError(t, st, body, http.StatusForbidden, "FORBIDDEN")
	assert.Equal(t, "email_mismatch", spReason(body))
	assert.NotContains(t, body["error"].(map[string]any)["message"], "carol", "the answer does not reveal the address")

	st, body = g.as(t, carol, "POST", "/invitations/"+tok+"/accept", nil)
	requireError(t, st, body, http.StatusForbidden, "FORBIDDEN")
	assert.Equal(t, "email_not_verified", spReason(body))
	assert.Equal(t, before, g.state(t, space), "refused accepts change nothing")

	st, body, _ = g.call(t, "POST", "/verify-email", map[string]any{"token": verifyTok}, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	st, body = g.as(t, carol, "POST", "/invitations/"+tok+"/accept", nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "member", g.role(t, space, carol))
	assert.Equal(t, "", g.role(t, space, wrong))
}

// Guards: single use under a race — 20 parallel accepts of one invitation
// (start barrier) make exactly one membership; the other 19 get 409.
func TestSpacesParallelAcceptsMakeOneMembership(t *testing.T) {
	t.Parallel()
	g := newSpFixture(t, spOptions{})
	owner := g.user(t, "owner@x.com")
	bob := g.user(t, "bob@x.com")
	space := g.createSpace(t, owner, "Crew", "team")
	_, tok := g.invite(t, owner, space, "bob@x.com", "admin")
	hdr := g.auth(t, bob)

	const n = 20
	start := make(chan struct{})
	statuses := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, body, err := g.do(context.Background(), "POST", "/invitations/"+tok+"/accept", nil, hdr)
			statuses[i], errs[i] = st, err
			if err == nil && st != http.StatusOK && (st != http.StatusConflict || spReason(body) != "accepted") {
				errs[i] = errors.New("unexpected answer: " + http.StatusText(st) + " " + errCode(body) + " " + spReason(body))
			}
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i := range n {
		require.NoError(t, errs[i], "request %d", i)
		if statuses[i] == http.StatusOK {
			ok++
		}
	}
	assert.Equal(t, 1, ok, "statuses %v", statuses)
	assert.Equal(t, 1, g.ownerInt(t, `SELECT count(*) FROM auth.space_members WHERE space_id = $1 AND user_id = $2`, space, bob.ID))
	assert.Equal(t, "admin", g.role(t, space, bob))
	assert.Equal(t, 1, g.ownerInt(t, `SELECT count(*) FROM auth.space_invitations WHERE space_id = $1 AND accepted_at IS NOT NULL`, space))
}

// Guards: the sole-owner rule holds under a race — two owners stepping
// down (or leaving) at the same moment leave exactly one owner, because
// membership changes serialise on the space row.
func TestSpacesLastOwnerRace(t *testing.T) {
	t.Parallel()
	g := newSpFixture(t, spOptions{})
	a := g.user(t, "a@x.com")
	b := g.user(t, "b@x.com")
	for round := range 6 {
		space := g.createSpace(t, a, "Crew", "team")
		g.join(t, a, space, b, "owner")
		req := func(u spUser) (string, string, any) {
			if round%2 == 0 {
				return "PATCH", "/" + space + "/members/" + u.ID.String(), map[string]any{"role": "member"}
			}
			return "DELETE", "/" + space + "/members/" + u.ID.String(), nil
		}
		start := make(chan struct{})
		statuses := make([]int, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, u := range []spUser{a, b} {
			method, path, body := req(u)
			hdr := g.auth(t, u)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses[i], _, errs[i] = g.do(context.Background(), method, path, body, hdr)
			}()
		}
		close(start)
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		done := http.StatusOK
		if round%2 == 1 {
			done = http.StatusNoContent
		}
		assert.ElementsMatch(t, []int{done, http.StatusConflict}, statuses, "round %d", round)
		assert.Equal(t, 1, g.ownerInt(t, `SELECT count(*) FROM auth.space_members WHERE space_id = $1 AND role = 'owner'`, space),
			"round %d: exactly one owner left", round)
	}
}

// Guards: isolation between spaces on every route — the owner of space X,
// using space Y's ids (alone or mixed with X's), gets 404 NOT_FOUND and
// changes nothing in X or Y, and no mail goes out. The test walks every
// route the handler serves.
func TestSpacesCrossSpaceIsolation(t *testing.T) {
	t.Parallel()
	g := newSpFixture(t, spOptions{})
	ox := g.user(t, "ox@x.com")
	mx := g.user(t, "mx@x.com")
	oy := g.user(t, "oy@x.com")
	my := g.user(t, "my@x.com")
	x := g.createSpace(t, ox, "Space X", "team")
	y := g.createSpace(t, oy, "Space Y", "team")
	g.join(t, ox, x, mx, "member")
	g.join(t, oy, y, my, "member")
	ix, _ := g.invite(t, ox, x, "pending-x@x.com", "member")
	iy, tokY := g.invite(t, oy, y, "pending-y@x.com", "member")
	var personalY string
	require.NoError(t, g.db.Owner.QueryRow(bg, `SELECT id FROM auth.spaces WHERE created_by = $1 AND type = 'personal'`, oy.ID).Scan(&personalY))

	type probe struct {
		method, path string
		body         any
		want         int
		wantMember   int // X's plain member, when it differs: 403 where X's own id comes first
	}
	routes := map[string][]probe{
		"GET /{id}":         {{"GET", "/" + y, nil, 404, 0}, {"GET", "/" + personalY, nil, 404, 0}},
		"PATCH /{id}":       {{"PATCH", "/" + y, map[string]any{"name": "Taken"}, 404, 0}},
		"DELETE /{id}":      {{"DELETE", "/" + y, nil, 404, 0}, {"DELETE", "/" + personalY, nil, 404, 0}},
		"GET /{id}/members": {{"GET", "/" + y + "/members", nil, 404, 0}},
		"PATCH /{id}/members/{userId}": {
			{"PATCH", "/" + y + "/members/" + my.ID.String(), map[string]any{"role": "owner"}, 404, 0},
			{"PATCH", "/" + y + "/members/" + oy.ID.String(), map[string]any{"role": "member"}, 404, 0},
			{"PATCH", "/" + x + "/members/" + my.ID.String(), map[string]any{"role": "owner"}, 404, 403},
			{"PATCH", "/" + y + "/members/" + ox.ID.String(), map[string]any{"role": "owner"}, 404, 0},
		},
		"DELETE /{id}/members/{userId}": {
			{"DELETE", "/" + y + "/members/" + my.ID.String(), nil, 404, 0},
			{"DELETE", "/" + y + "/members/" + oy.ID.String(), nil, 404, 0},
			{"DELETE", "/" + x + "/members/" + my.ID.String(), nil, 404, 403},
			{"DELETE", "/" + y + "/members/" + ox.ID.String(), nil, 404, 0},
		},
		"POST /{id}/invitations": {{"POST", "/" + y + "/invitations", map[string]any{"email": "victim@x.com", "role": "owner"}, 404, 0}},
		"GET /{id}/invitations":  {{"GET", "/" + y + "/invitations", nil, 404, 0}},
		"DELETE /{id}/invitations/{invitationId}": {
			{"DELETE", "/" + y + "/invitations/" + iy, nil, 404, 0},
			{"DELETE", "/" + x + "/invitations/" + iy, nil, 404, 403},
			{"DELETE", "/" + y + "/invitations/" + ix, nil, 404, 0},
		},
		// Y's invitation token names another address: refused, Y unchanged.
		"POST /invitations/{token}/accept": {{"POST", "/invitations/" + tokY + "/accept", nil, 403, 0}},
		// Creating and listing take no space id: X's owner makes a space
		// of its own and lists only its own spaces.
		"POST /{$}": {{"POST", "/", map[string]any{"name": "Space Z", "type": "club"}, 201, 0}},
		"GET /{$}":  {{"GET", "/", nil, 200, 0}},
	}
	var walked []string
	for pattern := range routes {
		walked = append(walked, pattern)
	}
	require.ElementsMatch(t, g.guilds.Routes(), walked, "the test walks every route of the handler")

	for _, as := range []spUser{ox, mx} {
		for pattern, probes := range routes {
			for _, p := range probes {
				bx, by, bpy := g.state(t, x), g.state(t, y), g.state(t, personalY)
				want := p.want
				if as == mx && p.wantMember != 0 {
					want = p.wantMember
				}
				st, body := g.as(t, as, p.method, p.path, p.body)
				require.Equal(t, want, st, "%s as %s: %s %s: %v", pattern, as.Email, p.method, p.path, body)
				assert.Equal(t, by, g.state(t, y), "%s %s changed space Y", p.method, p.path)
				assert.Equal(t, bpy, g.state(t, personalY), "%s %s changed Y's Personal space", p.method, p.path)
				assert.Equal(t, bx, g.state(t, x), "%s %s changed space X", p.method, p.path)
				if pattern == "GET /{$}" {
					for _, gd := range body["guilds"].([]any) {
						id := gd.(map[string]any)["id"]
						assert.NotEqual(t, y, id)
						assert.NotEqual(t, personalY, id)
					}
				}
			}
		}
	}
	g.settleMail(t)
	assert.Zero(t, g.mailsTo("victim@x.com"), "no invitation into Y was mailed")
	assert.Equal(t, 1, g.mailsTo("pending-y@x.com"))
}

// Guards: path ids that are no UUID answer 404 NOT_FOUND (before any
// query, so never a 500 from a cast), every route wants the Bearer token,
// and unknown paths answer the envelope.
func TestSpacesPathsAndAuthentication(t *testing.T) {
	t.Parallel()
	g := newSpFixture(t, spOptions{})
	u := g.user(t, "u@x.com")
	space := g.createSpace(t, u, "Crew", "team")
	good := uuid.NewString()
	for _, bad := range []string{"nope", "123", strings.ReplaceAll(good, "-", ""), "%7B" + good + "%7D", "urn:uuid:" + good, good + "0", strings.Repeat("9", 400)} {
		for _, p := range []struct{ method, path string }{
			{"GET", "/" + bad}, {"PATCH", "/" + bad}, {"DELETE", "/" + bad}, {"GET", "/" + bad + "/members"},
			{"PATCH", "/" + space + "/members/" + bad}, {"DELETE", "/" + space + "/members/" + bad},
			{"POST", "/" + bad + "/invitations"}, {"GET", "/" + bad + "/invitations"},
			{"DELETE", "/" + space + "/invitations/" + bad},
		} {
			st, body := g.as(t, u, p.method, p.path, map[string]any{"name": "x", "role": "member", "email": "a@x.com"})
			requireError(t, st, body, http.StatusNotFound, "NOT_FOUND")
		}
	}
	st, body := g.as(t, u, "GET", "/"+strings.ToUpper(space), nil)
	require.Equal(t, http.StatusOK, st, "an upper-case UUID names the same space: %v", body)

	st, body = g.as(t, u, "GET", "/"+space+"/nothing/here", nil)
	requireError(t, st, body, http.StatusNotFound, "NOT_FOUND")
	st, body = g.as(t, u, "PUT", "/"+space, nil)
	requireError(t, st, body, http.StatusNotFound, "NOT_FOUND")

	for _, p := range g.guilds.Routes() {
		method, path, _ := strings.Cut(p, " ")
		path = strings.NewReplacer("{$}", "", "{id}", space, "{userId}", u.ID.String(), "{invitationId}", good, "{token}", "tok").Replace(path)
		st, body, err := g.do(bg, method, path, map[string]any{}, nil)
		require.NoError(t, err)
		requireError(t, st, body, http.StatusUnauthorized, "UNAUTHORIZED")
		st, body, err = g.do(bg, method, path, map[string]any{}, bearer("not.a.jwt"))
		require.NoError(t, err)
		requireError(t, st, body, http.StatusUnauthorized, "TOKEN_INVALID")
	}
}

// Guards: deleting an account takes its memberships, its Personal space
// and every space it was the only member of (a space nobody belongs to
// can never be reached again), and the invitations it accepted; spaces
// shared with others stay with them, and the invitations it sent stay
// with no inviter. A missing cascade fails the deletion or leaves rows.
func TestSpacesAccountDeletion(t *testing.T) {
	t.Parallel()
	g := newSpFixture(t, spOptions{})
	u := g.user(t, "u@x.com")
	v := g.user(t, "v@x.com")
	solo := g.createSpace(t, u, "Solo", "brand")
	shared := g.createSpace(t, u, "Shared", "family")
	g.join(t, u, shared, v, "admin")
	vs := g.createSpace(t, v, "V's", "club")
	g.join(t, v, vs, u, "member")
	sent, _ := g.invite(t, u, shared, "later@x.com", "member")
	var personal string
	require.NoError(t, g.db.Owner.QueryRow(bg, `SELECT id FROM auth.spaces WHERE created_by = $1 AND type = 'personal'`, u.ID).Scan(&personal))

	access, _ := g.login(t, "u@x.com", strongPassword)
	// u is the only owner of shared, which has another member: deleting the
	// account would leave it without an owner, so it is refused and
	// nothing changes. Without the rule, shared would keep v as an admin
	// nobody could ever promote.
	st, body, _ := g.call(t, "DELETE", "/account", map[string]any{"password": strongPassword}, bearer(access))
	require.Equal(t, http.StatusConflict, st, "%v", body)
	details, _ := body["error"].(map[string]any)["details"].(map[string]any)
	assert.Equal(t, "sole_owner", details["reason"])
	assert.Equal(t, shared, details["spaceId"])
	assert.Equal(t, 1, g.ownerInt(t, `SELECT count(*) FROM auth.users WHERE id = $1`, u.ID))
	_, err := g.db.Owner.Exec(bg, `UPDATE auth.space_members SET role = 'owner' WHERE space_id = $1 AND user_id = $2`, shared, v.ID)
	require.NoError(t, err)

	st, body, _ = g.call(t, "DELETE", "/account", map[string]any{"password": strongPassword}, bearer(access))
	require.Equal(t, http.StatusNoContent, st, "%v", body)

	for _, id := range []string{personal, solo} {
		assert.Zero(t, g.ownerInt(t, `SELECT count(*) FROM auth.spaces WHERE id = $1`, id), "space %s", id)
	}
	assert.Zero(t, g.ownerInt(t, `SELECT count(*) FROM auth.space_members WHERE user_id = $1`, u.ID))
	assert.Zero(t, g.ownerInt(t, `SELECT count(*) FROM auth.space_invitations WHERE email = 'u@x.com'`), "the invitation u accepted")
	assert.Equal(t, 1, g.ownerInt(t, `SELECT count(*) FROM auth.spaces WHERE id = $1 AND created_by IS NULL`, shared))
	assert.Equal(t, "owner", g.role(t, shared, v))
	assert.Equal(t, "owner", g.role(t, vs, v))
	assert.Equal(t, 1, g.ownerInt(t, `SELECT count(*) FROM auth.space_invitations WHERE id = $1 AND invited_by IS NULL`, sent))
	st, body = g.as(t, v, "GET", "/", nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Len(t, body["guilds"], 3, "v's Personal, shared and V's: %v", body)
}
