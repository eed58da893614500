package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The organization groups of TestAuthEndToEnd drive the guild routes
// (/api/v1/guilds) and the singleton bootstrap
// (/api/v1/me/bootstrap-singletons) as run mounts them, behind the real
// Bearer middleware, every answer validated against openapi.yaml: a walk
// through a space's life (create, rename, members, invitations mailed and
// accepted, roles, removal, deletion) with the sync rows the bootstrap
// makes, and the error answers. Access tokens are issued with the server's
// key (no logins); 6 password operations in all.

func guildsPath(p string) string { return guildsPrefix + p }

type e2eGuild struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
}

type e2eMember struct {
	UserID   uuid.UUID `json:"userId"`
	Email    string    `json:"email"`
	Name     *string   `json:"name"`
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joinedAt"`
}

type e2eInvitation struct {
	ID        uuid.UUID  `json:"id"`
	Email     string     `json:"email"`
	Role      string     `json:"role"`
	Status    string     `json:"status"`
	InvitedBy *uuid.UUID `json:"invitedBy"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt time.Time  `json:"expiresAt"`
}

type e2eBootstrapped struct {
	OK           bool `json:"ok"`
	Bootstrapped struct {
		UserContext bool               `json:"userContext"`
		Spaces      map[uuid.UUID]bool `json:"spaces"`
	} `json:"bootstrapped"`
}

// e2eGuildsWalk: a space's life with every guild route answering 2xx, and
// the singletons of signup, space creation and the reconcile. 3 password
// operations.
func e2eGuildsWalk(t *testing.T, f *e2eServer) {
	alice := f.signup("alice@example.test", e2ePass1)
	a := withBearer(f.validToken(alice.ID, alice.Email))

	// Signup made the Personal space, owned by alice.
	guilds := f.guilds(a)
	require.Len(t, guilds, 1)
	personal := guilds[0]
	assert.Equal(t, "Personal", personal.Name)
	assert.Equal(t, "personal", personal.Type)
	assert.Equal(t, "owner", personal.Role)
	assert.WithinDuration(t, time.Now(), personal.CreatedAt, time.Minute)

	// The signup hooks bootstrapped the user's context row and the
	// Personal space's kontext document: the reconcile inserts nothing.
	f.assertBootstrap(a, false, map[uuid.UUID]bool{personal.ID: false})
	// Without them (a bootstrap failure at signup) it inserts both, once.
	tag, err := f.db.Owner.Exec(context.Background(), `DELETE FROM mana_sync.sync_changes WHERE user_id = $1`, alice.ID)
	require.NoError(t, err)
	require.EqualValues(t, 2, tag.RowsAffected(), "the user's context row and the Personal space's kontextDoc")
	f.assertBootstrap(a, true, map[uuid.UUID]bool{personal.ID: true})
	f.assertBootstrap(a, false, map[uuid.UUID]bool{personal.ID: false})
	assert.Equal(t, 1, f.kontextDocs(personal.ID, alice.ID))

	// Create a team space: the name is trimmed, the creator owns it, and
	// its kontext document is there at once.
	r := f.expect(201, "POST", guildsPath(""), map[string]any{"name": "  Orchestra ", "type": "team"}, a)
	team := decodeJSON[struct {
		Guild e2eGuild `json:"guild"`
	}](t, r.body).Guild
	assert.Equal(t, "Orchestra", team.Name)
	assert.Equal(t, "team", team.Type)
	assert.Equal(t, "owner", team.Role)
	assert.Equal(t, 1, f.kontextDocs(team.ID, alice.ID), "creating a space bootstraps its kontextDoc")
	f.assertBootstrap(a, false, map[uuid.UUID]bool{personal.ID: false, team.ID: false})

	guilds = f.guilds(a)
	require.Len(t, guilds, 2)
	assert.Equal(t, []uuid.UUID{personal.ID, team.ID}, []uuid.UUID{guilds[0].ID, guilds[1].ID}, "Personal first")
	// The collection root also answers with the trailing slash, without a
	// redirect (undocumented courtesy, so not through the spec client).
	assert.Equal(t, guilds, f.guildsWithSlash(a))

	got := f.guild(200, "GET", team.ID, nil, a)
	assert.WithinDuration(t, team.CreatedAt, got.CreatedAt, time.Microsecond)
	got.CreatedAt = team.CreatedAt
	assert.Equal(t, team, got)
	renamed := f.guild(200, "PATCH", team.ID, map[string]any{"name": "Chamber Orchestra"}, a)
	assert.Equal(t, "Chamber Orchestra", renamed.Name)
	assert.Equal(t, renamed.Name, f.guild(200, "GET", team.ID, nil, a).Name)

	members := f.members(team.ID, a)
	require.Len(t, members, 1)
	assert.Equal(t, alice.ID, members[0].UserID)
	assert.Equal(t, "alice@example.test", members[0].Email)
	assert.Nil(t, members[0].Name)
	assert.Equal(t, "owner", members[0].Role)

	// Invite bob; inviting again resends: the first link is revoked.
	bob := f.signup("bob@example.test", e2ePass2)
	b := withBearer(f.validToken(bob.ID, bob.Email))
	inv1 := f.invite(team.ID, " Bob@Example.TEST ", "member", a)
	assert.Equal(t, "bob@example.test", inv1.Email)
	assert.Equal(t, "member", inv1.Role)
	assert.Equal(t, "pending", inv1.Status)
	require.NotNil(t, inv1.InvitedBy)
	assert.Equal(t, alice.ID, *inv1.InvitedBy)
	assert.WithinDuration(t, time.Now().Add(7*24*time.Hour), inv1.ExpiresAt, time.Minute)
	tok1 := f.mailToken("bob@example.test", "accept-invitation")
	inv2 := f.invite(team.ID, "bob@example.test", "admin", a)
	assert.NotEqual(t, inv1.ID, inv2.ID)
	tok2 := f.mailToken("bob@example.test", "accept-invitation")
	assert.NotEqual(t, tok1, tok2)
	open := f.invitations(team.ID, a)
	require.Len(t, open, 1, "the resent invitation replaced the first")
	assert.Equal(t, inv2.ID, open[0].ID)
	assert.Equal(t, "admin", open[0].Role)
	assert.WithinDuration(t, inv2.ExpiresAt, open[0].ExpiresAt, time.Millisecond)

	accept := func(tok string) string { return guildsPath("/invitations/" + tok + "/accept") }
	e := f.expectCode(409, "CONFLICT", "POST", accept(tok1), nil, b)
	assert.Equal(t, "revoked", e.Details["reason"])
	e = f.expectCode(403, "FORBIDDEN", "POST", accept(tok2), nil, a)
	assert.Equal(t, "email_mismatch", e.Details["reason"])
	r = f.expect(200, "POST", accept(tok2), nil, b)
	joined := decodeJSON[struct {
		Guild e2eGuild `json:"guild"`
		Role  string   `json:"role"`
	}](t, r.body)
	assert.Equal(t, team.ID, joined.Guild.ID)
	assert.Equal(t, "Chamber Orchestra", joined.Guild.Name)
	assert.Equal(t, "admin", joined.Guild.Role)
	assert.Equal(t, "admin", joined.Role)
	e = f.expectCode(409, "CONFLICT", "POST", accept(tok2), map[string]any{}, b)
	assert.Equal(t, "accepted", e.Details["reason"])
	assert.Empty(t, f.invitations(team.ID, a), "an accepted invitation is no longer open")
	e = f.expectCode(409, "CONFLICT", "DELETE", guildsPath("/"+team.ID.String()+"/invitations/"+inv2.ID.String()), nil, a)
	assert.Equal(t, "accepted", e.Details["reason"])

	members = f.members(team.ID, b)
	require.Len(t, members, 2)
	assert.Equal(t, []string{"owner", "admin"}, []string{members[0].Role, members[1].Role})
	assert.Equal(t, bob.ID, members[1].UserID)
	// Bob's reconcile covers the space; its document is attributed to its
	// owner and exists already.
	f.assertBootstrap(b, false, map[uuid.UUID]bool{f.guilds(b)[0].ID: false, team.ID: false})

	// Role change.
	r = f.expect(200, "PATCH", guildsPath("/"+team.ID.String()+"/members/"+bob.ID.String()), map[string]any{"role": "member"}, a)
	m := decodeJSON[struct {
		Member e2eMember `json:"member"`
	}](t, r.body).Member
	assert.Equal(t, bob.ID, m.UserID)
	assert.Equal(t, "bob@example.test", m.Email)
	assert.Equal(t, "member", m.Role)
	assert.Equal(t, "member", f.guild(200, "GET", team.ID, nil, b).Role)

	// Invite carol, revoke (twice: the second changes nothing); her link
	// then fails, first on her unverified account.
	carol := f.register("carol@example.test", e2ePass3)
	f.mailToken("carol@example.test", "verify-email") // left unused: carol stays unverified
	inv3 := f.invite(team.ID, "carol@example.test", "member", a)
	tok3 := f.mailToken("carol@example.test", "accept-invitation")
	revoke := guildsPath("/" + team.ID.String() + "/invitations/" + inv3.ID.String())
	f.expect(204, "DELETE", revoke, nil, a)
	f.expect(204, "DELETE", revoke, nil, a)
	assert.Empty(t, f.invitations(team.ID, a))
	c := withBearer(f.validToken(carol.ID, carol.Email))
	e = f.expectCode(403, "FORBIDDEN", "POST", accept(tok3), nil, c)
	assert.Equal(t, "email_not_verified", e.Details["reason"])

	// Remove bob: the space is gone for him.
	f.expect(204, "DELETE", guildsPath("/"+team.ID.String()+"/members/"+bob.ID.String()), nil, a)
	f.expectCode(404, "NOT_FOUND", "GET", guildsPath("/"+team.ID.String()), nil, b)
	assert.Len(t, f.members(team.ID, a), 1)

	// Delete the space; the Personal space cannot be.
	f.expect(204, "DELETE", guildsPath("/"+team.ID.String()), nil, a)
	f.expectCode(404, "NOT_FOUND", "GET", guildsPath("/"+team.ID.String()), nil, a)
	f.expectCode(403, "FORBIDDEN", "DELETE", guildsPath("/"+personal.ID.String()), nil, a)
	guilds = f.guilds(a)
	require.Len(t, guilds, 1)
	assert.Equal(t, personal.ID, guilds[0].ID)
}

// e2eGuildsErrors: the error answers of the guild routes — 404 for spaces
// of others and ids that are not UUIDs, 403 for members, 400 for roles and
// types not spelled exactly, 409 for the last owner — and what account
// deletion leaves. 3 password operations.
func e2eGuildsErrors(t *testing.T, f *e2eServer) {
	alice := f.signup("alice@example.test", e2ePass1)
	bob := f.signup("bob@example.test", e2ePass2)
	a := withBearer(f.validToken(alice.ID, alice.Email))
	b := withBearer(f.validToken(bob.ID, bob.Email))
	space := f.guild(201, "POST", uuid.Nil, map[string]any{"name": "Garden club", "type": "club"}, a)
	bobs := f.guild(201, "POST", uuid.Nil, map[string]any{"name": "Bob's practice", "type": "practice"}, b)
	sp := func(id uuid.UUID, rest string) string { return guildsPath("/" + id.String() + rest) }

	// No token: the middleware refuses every route.
	for _, rt := range [][2]string{
		{"POST", guildsPath("")}, {"GET", guildsPath("")}, {"GET", sp(space.ID, "")}, {"PATCH", sp(space.ID, "")},
		{"DELETE", sp(space.ID, "")}, {"GET", sp(space.ID, "/members")},
		{"PATCH", sp(space.ID, "/members/"+alice.ID.String())}, {"DELETE", sp(space.ID, "/members/"+alice.ID.String())},
		{"POST", sp(space.ID, "/invitations")}, {"GET", sp(space.ID, "/invitations")},
		{"DELETE", sp(space.ID, "/invitations/"+uuid.NewString())},
		{"POST", guildsPath("/invitations/AAAAAAAAAAAAAAAAAAAAAA/accept")}, {"POST", bootstrapPath},
	} {
		r := f.expect(401, rt[0], rt[1], nil)
		assert.Equal(t, "UNAUTHORIZED", decodeEnvelope(t, r.body).Error.Code, "%s %s", rt[0], rt[1])
		assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"), "%s %s", rt[0], rt[1])
	}
	huge := `{"name":"` + strings.Repeat("a", 70<<10) + `"}`
	f.expectCode(413, "PAYLOAD_TOO_LARGE", "POST", guildsPath(""), huge, a)
	f.expectCode(413, "PAYLOAD_TOO_LARGE", "PATCH", sp(space.ID, ""), huge, a)
	f.expectCode(400, "BAD_REQUEST", "POST", bootstrapPath, `[1]`, a)
	f.expectCode(400, "BAD_REQUEST", "POST", guildsPath("/invitations/AAAAAAAAAAAAAAAAAAAAAA/accept"), `[1]`, a)
	f.expectCode(401, "TOKEN_EXPIRED", "GET", sp(space.ID, ""), nil, withBearer(f.expiredToken(alice.ID, alice.Email)))

	// 404: another user's space on every route, and ids that are not UUIDs.
	for _, rt := range []struct {
		method, path string
		body         any
	}{
		{"GET", sp(bobs.ID, ""), nil},
		{"PATCH", sp(bobs.ID, ""), map[string]any{"name": "Mine now"}},
		{"DELETE", sp(bobs.ID, ""), nil},
		{"GET", sp(bobs.ID, "/members"), nil},
		{"PATCH", sp(bobs.ID, "/members/"+bob.ID.String()), map[string]any{"role": "member"}},
		{"DELETE", sp(bobs.ID, "/members/"+bob.ID.String()), nil},
		{"POST", sp(bobs.ID, "/invitations"), map[string]any{"email": "eve@example.test", "role": "member"}},
		{"GET", sp(bobs.ID, "/invitations"), nil},
		{"DELETE", sp(bobs.ID, "/invitations/"+uuid.NewString()), nil},
		{"GET", guildsPath("/not-a-uuid"), nil},
		{"GET", guildsPath("/" + uuid.New().String()), nil},
		{"GET", guildsPath("/" + bobs.ID.String()[:35]), nil},
		{"GET", guildsPath("/" + stripDashes(bobs.ID)), nil},
		{"PATCH", sp(space.ID, "/members/not-a-uuid"), map[string]any{"role": "member"}},
		{"DELETE", sp(space.ID, "/members/"+bob.ID.String()), nil}, // bob is no member (yet)
		{"DELETE", sp(space.ID, "/invitations/not-a-uuid"), nil},
		{"DELETE", sp(space.ID, "/invitations/"+uuid.NewString()), nil},
		{"POST", guildsPath("/invitations/short/accept"), nil},
		{"POST", guildsPath("/invitations/" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" + "/accept"), nil},
	} {
		f.expectCode(404, "NOT_FOUND", rt.method, rt.path, rt.body, a, rt.method+" "+rt.path)
	}
	assert.Equal(t, "Bob's practice", f.guild(200, "GET", bobs.ID, nil, b).Name, "nothing changed")

	// 400: bodies, names, types and roles not spelled exactly.
	f.expectCode(400, "BAD_REQUEST", "POST", guildsPath(""), `{"name":`, a)
	f.expectCode(400, "BAD_REQUEST", "PATCH", sp(space.ID, ""), nil, a)
	for _, bad := range []map[string]any{
		{"name": "", "type": "team"},
		{"name": "Team", "type": "Team"},
		{"name": "Team", "type": "personal"},
		{"name": "Team"},
		{"name": "example.com", "type": "team"},
		{"name": "Line\nbreak", "type": "team"},
	} {
		e := f.expectCode(400, "VALIDATION_FAILED", "POST", guildsPath(""), bad, a)
		assert.NotEmpty(t, e.Details["fields"], "%v", bad)
	}
	e := f.expectCode(400, "VALIDATION_FAILED", "PATCH", sp(space.ID, ""), map[string]any{"name": "   "}, a)
	assert.Contains(t, e.Details["fields"], "name")
	for _, role := range []string{" owner", "Owner", "owner ", "", "guest"} {
		e = f.expectCode(400, "VALIDATION_FAILED", "PATCH", sp(space.ID, "/members/"+alice.ID.String()), map[string]any{"role": role}, a)
		assert.Equal(t, map[string]any{"role": "one of owner, admin, member"}, e.Details["fields"], "%q", role)
		e = f.expectCode(400, "VALIDATION_FAILED", "POST", sp(space.ID, "/invitations"), map[string]any{"email": "eve@example.test", "role": role}, a)
		assert.Contains(t, e.Details["fields"], "role", "%q", role)
	}
	e = f.expectCode(400, "VALIDATION_FAILED", "POST", sp(space.ID, "/invitations"), map[string]any{"email": "not an address", "role": "member"}, a)
	assert.Contains(t, e.Details["fields"], "email")
	assert.Len(t, f.guilds(a), 2, "no refused request created a space")

	// 403: the Personal space is not shared; a member may read but not act.
	alicePersonal := f.guilds(a)[0]
	require.Equal(t, "personal", alicePersonal.Type)
	f.expectCode(403, "FORBIDDEN", "POST", sp(alicePersonal.ID, "/invitations"), map[string]any{"email": "bob@example.test", "role": "member"}, a)
	f.invite(space.ID, "bob@example.test", "member", a)
	f.expect(200, "POST", guildsPath("/invitations/"+f.mailToken("bob@example.test", "accept-invitation")+"/accept"), nil, b)
	pending := f.invite(space.ID, "carol@example.test", "member", a)
	assert.Len(t, f.members(space.ID, b), 2, "members may list the members")
	for _, rt := range []struct {
		method, path string
		body         any
	}{
		{"PATCH", sp(space.ID, ""), map[string]any{"name": "Bob's now"}},
		{"DELETE", sp(space.ID, ""), nil},
		{"PATCH", sp(space.ID, "/members/"+alice.ID.String()), map[string]any{"role": "member"}},
		{"PATCH", sp(space.ID, "/members/"+bob.ID.String()), map[string]any{"role": "owner"}},
		{"DELETE", sp(space.ID, "/members/"+alice.ID.String()), nil},
		{"POST", sp(space.ID, "/invitations"), map[string]any{"email": "eve@example.test", "role": "member"}},
		{"GET", sp(space.ID, "/invitations"), nil},
		{"DELETE", sp(space.ID, "/invitations/"+pending.ID.String()), nil},
	} {
		f.expectCode(403, "FORBIDDEN", rt.method, rt.path, rt.body, b, rt.method+" "+rt.path)
	}
	assert.Equal(t, "Garden club", f.guild(200, "GET", space.ID, nil, b).Name, "nothing changed")
	require.Len(t, f.invitations(space.ID, a), 1)

	// 409: inviting a member, the last owner stepping down or leaving.
	e = f.expectCode(409, "CONFLICT", "POST", sp(space.ID, "/invitations"), map[string]any{"email": "BOB@example.test", "role": "admin"}, a)
	assert.Equal(t, "already_member", e.Details["reason"])
	e = f.expectCode(409, "CONFLICT", "PATCH", sp(space.ID, "/members/"+alice.ID.String()), map[string]any{"role": "admin"}, a)
	assert.Equal(t, "last_owner", e.Details["reason"])
	e = f.expectCode(409, "CONFLICT", "DELETE", sp(space.ID, "/members/"+alice.ID.String()), nil, a)
	assert.Equal(t, "last_owner", e.Details["reason"])
	assert.Equal(t, "owner", f.guild(200, "GET", space.ID, nil, a).Role)

	// An expired invitation is listed as such and answers 409 expired.
	eve := f.signup("eve@example.test", e2ePass3)
	f.invite(space.ID, "eve@example.test", "member", a)
	eveTok := f.mailToken("eve@example.test", "accept-invitation")
	_, err := f.db.Owner.Exec(context.Background(), `UPDATE auth.space_invitations
		SET created_at = now() - interval '8 days', expires_at = now() - interval '1 day' WHERE email = 'eve@example.test'`)
	require.NoError(t, err)
	open := f.invitations(space.ID, a)
	require.Len(t, open, 2)
	assert.Equal(t, "pending", open[0].Status, "carol's, newest first")
	assert.Equal(t, "expired", open[1].Status, "eve's")
	e = f.expectCode(409, "CONFLICT", "POST", guildsPath("/invitations/"+eveTok+"/accept"), nil, withBearer(f.validToken(eve.ID, eve.Email)))
	assert.Equal(t, "expired", e.Details["reason"])

	// Account deletion: the only owner of a space with other members is
	// refused (the space would be left without an owner); once bob is an
	// owner too, alice may go. Her Personal space goes with her; the shared
	// space stays with bob. Its kontext document was attributed to alice
	// and went with her; bob's reconcile makes it again.
	e = f.expectCode(409, "CONFLICT", "DELETE", authPath("/account"), map[string]any{"password": e2ePass1}, a)
	assert.Equal(t, "sole_owner", e.Details["reason"])
	assert.Equal(t, space.ID.String(), e.Details["spaceId"])
	assert.True(t, f.spaceExists(alicePersonal.ID), "a refused deletion deletes nothing")
	f.expect(200, "PATCH", sp(space.ID, "/members/"+bob.ID.String()), map[string]any{"role": "owner"}, a)
	f.expect(204, "DELETE", authPath("/account"), map[string]any{"password": e2ePass1}, a)
	assert.False(t, f.spaceExists(alicePersonal.ID), "the Personal space went with its account")
	assert.True(t, f.spaceExists(space.ID), "the shared space stays with its member")
	// The deleted account's still valid access token.
	f.expectCode(409, "CONFLICT", "POST", bootstrapPath, nil, a)
	f.expectCode(404, "NOT_FOUND", "POST", guildsPath(""), map[string]any{"name": "Late", "type": "team"}, a)
	assert.Empty(t, f.guilds(a))
	left := f.members(space.ID, b)
	require.Len(t, left, 1)
	assert.Equal(t, "owner", left[0].Role)
	bobPersonal := f.guilds(b)[0]
	require.Equal(t, "personal", bobPersonal.Type)
	f.assertBootstrap(b, false, map[uuid.UUID]bool{bobPersonal.ID: false, bobs.ID: false, space.ID: true})
	assert.Equal(t, 1, f.kontextDocs(space.ID, bob.ID))
}

func stripDashes(id uuid.UUID) string {
	s := id.String()
	return s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
}

// guild sends a request answered with {guild} (POST with uuid.Nil: the
// collection root) and returns the guild.
func (f *e2eServer) guild(want int, method string, id uuid.UUID, body any, extra ...any) e2eGuild {
	f.t.Helper()
	path := guildsPath("")
	if id != uuid.Nil {
		path = guildsPath("/" + id.String())
	}
	r := f.expect(want, method, path, body, extra...)
	return decodeJSON[struct {
		Guild e2eGuild `json:"guild"`
	}](f.t, r.body).Guild
}

func (f *e2eServer) guilds(extra ...any) []e2eGuild {
	f.t.Helper()
	r := f.expect(200, "GET", guildsPath(""), nil, extra...)
	return decodeJSON[struct {
		Guilds []e2eGuild `json:"guilds"`
	}](f.t, r.body).Guilds
}

// guildsWithSlash lists the guilds at /api/v1/guilds/, bypassing the spec
// client (the path is a courtesy, documented once without the slash).
func (f *e2eServer) guildsWithSlash(bearer reqOpt) []e2eGuild {
	f.t.Helper()
	req, err := http.NewRequest("GET", f.c.srv.URL+guildsPath("/"), nil)
	require.NoError(f.t, err)
	bearer(req.Header)
	resp, err := f.c.srv.Client().Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	require.Equal(f.t, 200, resp.StatusCode, "%s", body)
	return decodeJSON[struct {
		Guilds []e2eGuild `json:"guilds"`
	}](f.t, body).Guilds
}

func (f *e2eServer) members(id uuid.UUID, extra ...any) []e2eMember {
	f.t.Helper()
	r := f.expect(200, "GET", guildsPath("/"+id.String()+"/members"), nil, extra...)
	return decodeJSON[struct {
		Members []e2eMember `json:"members"`
	}](f.t, r.body).Members
}

func (f *e2eServer) invite(id uuid.UUID, email, role string, extra ...any) e2eInvitation {
	f.t.Helper()
	r := f.expect(201, "POST", guildsPath("/"+id.String()+"/invitations"), map[string]any{"email": email, "role": role}, extra...)
	return decodeJSON[struct {
		Invitation e2eInvitation `json:"invitation"`
	}](f.t, r.body).Invitation
}

func (f *e2eServer) invitations(id uuid.UUID, extra ...any) []e2eInvitation {
	f.t.Helper()
	r := f.expect(200, "GET", guildsPath("/"+id.String()+"/invitations"), nil, extra...)
	return decodeJSON[struct {
		Invitations []e2eInvitation `json:"invitations"`
	}](f.t, r.body).Invitations
}

// assertBootstrap calls the reconcile and requires its answer.
func (f *e2eServer) assertBootstrap(bearer reqOpt, userContext bool, spaces map[uuid.UUID]bool) {
	f.t.Helper()
	got := decodeJSON[e2eBootstrapped](f.t, f.expect(200, "POST", bootstrapPath, nil, bearer).body)
	assert.True(f.t, got.OK)
	assert.Equal(f.t, userContext, got.Bootstrapped.UserContext, "userContext")
	assert.Equal(f.t, spaces, got.Bootstrapped.Spaces, "spaces")
}

// kontextDocs counts the bootstrap rows of a space's kontext document
// attributed to owner.
func (f *e2eServer) kontextDocs(spaceID, owner uuid.UUID) int {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.db.Owner.QueryRow(context.Background(), `SELECT count(*) FROM mana_sync.sync_changes
		WHERE app_id = 'kontext' AND table_name = 'kontextDoc' AND record_id = $1 AND space_id = $2
		  AND user_id = $3 AND client_id = 'system:bootstrap' AND origin = 'system' AND op = 'insert'`,
		spaceID.String(), spaceID, owner).Scan(&n))
	return n
}

func (f *e2eServer) spaceExists(id uuid.UUID) bool {
	f.t.Helper()
	var ok bool
	require.NoError(f.t, f.db.Owner.QueryRow(context.Background(),
		`SELECT EXISTS (SELECT 1 FROM auth.spaces WHERE id = $1)`, id).Scan(&ok))
	return ok
}
