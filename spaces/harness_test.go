package spaces_test

// Helpers of the spaces tests. Their names start with "sp" so they cannot
// collide with helpers of the other test files of this package.

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/internal/mailtest"
	"github.com/mana-how/mana-auth/internal/secret"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/spaces"
	"github.com/mana-how/mana-auth/token"
)

const spPrefix = "/api/v1/guilds"

// spFixture is the account stack of authtest with the spaces service wired
// in as the reference server wires it (the Personal space at signup, the
// sole-owner check at account deletion), serving the auth handler under
// /api/v1/auth and the spaces handler under /api/v1/guilds.
type spFixture struct {
	*authtest.Fixture
	db     *testutil.Database
	svc    *spaces.Service
	tokens *token.Tokens
	clock  *authtest.Clock
	smtp   *mailtest.Server
	guilds *spaces.Handler
}

type spOptions struct {
	hooks          spaces.Hooks
	noVerification bool // register answers tokens, before the address is verified
}

func newSpFixture(t testing.TB, o spOptions) *spFixture {
	t.Helper()
	g := &spFixture{}
	f := authtest.New(t, authtest.Options{
		RequireVerification: !o.noVerification,
		Hooks: manaauth.Hooks{
			UserCreatedTx: func(ctx context.Context, tx pgx.Tx, u manaauth.User) error {
				_, err := g.svc.CreatePersonalTx(ctx, tx, u.ID)
				return err
			},
			UserDeletingTx: func(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
				return g.svc.CheckUserDeletable(ctx, tx, userID)
			},
		},
		Mount: func(f *authtest.Fixture, mux *http.ServeMux) {
			svc, err := spaces.New(spaces.Config{Pool: f.Pool, Mailer: f.Mailer, Links: f.Links, Hooks: o.hooks,
				Now: f.Clock.Now, Logger: f.Logger, Registerer: f.Registry})
			require.NoError(t, err)
			t.Cleanup(svc.Close)
			h, err := spaces.NewHandler(svc, spaces.HandlerOptions{Tokens: f.Tokens, Logger: f.Logger})
			require.NoError(t, err)
			g.svc, g.guilds = svc, h
			spMount(mux, h)
		},
	})
	g.Fixture, g.db, g.tokens, g.clock, g.smtp = f, f.DB, f.Tokens, f.Clock, f.SMTP
	return g
}

// spMount mounts the spaces handler the way the reference server is told
// to: route by route under the prefix, the collection root also without
// its trailing slash.
func spMount(mux *http.ServeMux, h *spaces.Handler) {
	inner := http.StripPrefix(spPrefix, h)
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = "/", ""
		r2.URL = &u
		h.ServeHTTP(w, r2)
	})
	for _, p := range h.Routes() {
		method, path, _ := strings.Cut(p, " ")
		mux.Handle(method+" "+spPrefix+path, inner)
		if path == "/{$}" {
			mux.Handle(method+" "+spPrefix, root)
		}
	}
	mux.Handle(spPrefix+"/", inner) // the handler's own envelope 404 for other paths
}

// spUser is a signed-up, verified account.
type spUser struct {
	ID    uuid.UUID
	Email string
}

// user registers and verifies email through the API.
func (g *spFixture) user(t testing.TB, email string) spUser {
	t.Helper()
	id := g.SignUp(t, email, strongPassword)
	return spUser{ID: uuid.MustParse(id), Email: email}
}

// auth is the Bearer header of a fresh access token of u (the middleware
// checks the token only, so no login is needed).
func (g *spFixture) auth(t testing.TB, u spUser) map[string]string {
	t.Helper()
	tok, _, err := g.tokens.Issue(u.ID, u.Email, uuid.New())
	require.NoError(t, err)
	return bearer(tok)
}

// do sends a request to the spaces handler as u; it does not use require,
// so goroutines may call it.
func (g *spFixture) do(ctx context.Context, method, path string, body any, hdr map[string]string) (int, map[string]any, error) {
	return g.Try(ctx, method, spPrefix+path, body, hdr)
}

// as calls the spaces handler as u.
func (g *spFixture) as(t testing.TB, u spUser, method, path string, body any) (int, map[string]any) {
	t.Helper()
	st, out, err := g.do(context.Background(), method, path, body, g.auth(t, u))
	require.NoError(t, err, "%s %s", method, path)
	return st, out
}

// guild reads the guild object of an answer.
func spGuild(t testing.TB, body map[string]any) map[string]any {
	t.Helper()
	gd, ok := body["guild"].(map[string]any)
	require.True(t, ok, "answer has no guild: %v", body)
	return gd
}

// createSpace makes a space as u and returns its id.
func (g *spFixture) createSpace(t testing.TB, u spUser, name, typ string) string {
	t.Helper()
	st, body := g.as(t, u, "POST", "/", map[string]any{"name": name, "type": typ})
	require.Equal(t, http.StatusCreated, st, "create %q: %v", name, body)
	return spGuild(t, body)["id"].(string)
}

// invite invites email into space as u and returns the invitation id and
// the token of the mailed link.
func (g *spFixture) invite(t testing.TB, u spUser, space, email, role string) (id, token string) {
	t.Helper()
	st, body := g.as(t, u, "POST", "/"+space+"/invitations", map[string]any{"email": email, "role": role})
	require.Equal(t, http.StatusCreated, st, "invite %s as %s: %v", email, role, body)
	inv, _ := body["invitation"].(map[string]any)
	id, _ = inv["id"].(string)
	require.NotEmpty(t, id, "%v", body)
	return id, g.mailToken(t, email, "accept-invitation")
}

// join makes member a member of space with role through invite and accept.
func (g *spFixture) join(t testing.TB, by spUser, space string, member spUser, role string) {
	t.Helper()
	_, tok := g.invite(t, by, space, member.Email, role)
	st, body := g.as(t, member, "POST", "/invitations/"+tok+"/accept", nil)
	require.Equal(t, http.StatusOK, st, "accept as %s: %v", member.Email, body)
}

// state dumps everything stored about a space (row, members,
// invitations) as the owner sees it, to compare before and after.
func (g *spFixture) state(t testing.TB, space string) string {
	t.Helper()
	var s, m, i string
	err := g.db.Owner.QueryRow(context.Background(), `SELECT
		coalesce((SELECT row_to_json(s)::text FROM auth.spaces s WHERE s.id = $1), 'none'),
		coalesce((SELECT json_agg(m ORDER BY m.user_id)::text FROM auth.space_members m WHERE m.space_id = $1), '[]'),
		coalesce((SELECT json_agg(i ORDER BY i.id)::text FROM auth.space_invitations i WHERE i.space_id = $1), '[]')`,
		space).Scan(&s, &m, &i)
	require.NoError(t, err)
	return s + "\n" + m + "\n" + i
}

// role is the stored role of user in space, "" when no member.
func (g *spFixture) role(t testing.TB, space string, u spUser) string {
	t.Helper()
	var r string
	err := g.db.Owner.QueryRow(context.Background(),
		`SELECT coalesce((SELECT role FROM auth.space_members WHERE space_id = $1 AND user_id = $2), '')`, space, u.ID).Scan(&r)
	require.NoError(t, err)
	return r
}

// hookFailures reads mana_auth_hook_failures_total{hook=…}.
func (g *spFixture) hookFailures(t testing.TB, hook string) float64 {
	t.Helper()
	return g.Metric(t, "mana_auth_hook_failures_total", "hook", hook)
}

// call sends a request to the auth handler.
func (g *spFixture) call(t testing.TB, method, path string, body any, hdr map[string]string) (int, map[string]any, *http.Response) {
	t.Helper()
	return g.Call(t, method, authtest.AuthPrefix+path, body, hdr)
}

func (g *spFixture) login(t testing.TB, email, password string) (access, refresh string) {
	t.Helper()
	return g.Login(t, email, password)
}

func (g *spFixture) mailToken(t testing.TB, to, path string) string {
	t.Helper()
	return g.MailToken(t, to, path)
}

func (g *spFixture) mailsTo(to string) int { return g.MailsTo(to) }

// settleMail waits for the mails of both services.
func (g *spFixture) settleMail(t testing.TB) {
	t.Helper()
	g.SettleMail(t, g.svc.Close)
}

func (g *spFixture) ownerInt(t testing.TB, sql string, args ...any) int {
	t.Helper()
	return g.OwnerInt(t, sql, args...)
}

var (
	bg             = context.Background()
	bearer         = authtest.Bearer
	requireError   = authtest.RequireError
	errCode        = authtest.ErrCode
	errDetails     = authtest.ErrDetails
	errFields      = authtest.ErrFields
	strongPassword = authtest.StrongPassword
	sessSHA256     = secret.Hash
	userOf         = authtest.UserOf
	keys           = authtest.Keys
	flipLast       = authtest.FlipLast
)

const mailWait = authtest.MailWait

// spReason is error.details.reason of an envelope.
func spReason(body map[string]any) string {
	r, _ := errDetails(body)["reason"].(string)
	return r
}
