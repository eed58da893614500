package apikey_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/apikey"
	"github.com/mana-how/mana-auth/gdpr"
	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/manaauth"
)

const (
	prefix     = "/api/v1/api-keys"
	serviceKey = "service-key-of-the-tests-0123456789abcdef"
)

// fixture is the account stack of authtest with the API key service
// mounted under /api/v1/api-keys, and its erasure wired into account
// deletion as the reference server wires it.
type fixture struct {
	*authtest.Fixture
	svc  *apikey.Service
	keys *apikey.Handler
}

type options struct {
	cfg        apikey.Config // Pool, Events, Now and Logger are the fixture's
	serviceKey string        // "": none configured
}

func newFixture(t testing.TB, o options) *fixture {
	t.Helper()
	g := &fixture{}
	g.Fixture = authtest.New(t, authtest.Options{
		Hooks: manaauth.Hooks{UserDeletingTx: func(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
			return g.svc.EraseData(ctx, tx, gdpr.Subject{UserID: userID})
		}},
		Mount: func(f *authtest.Fixture, mux *http.ServeMux) {
			g.svc, g.keys = mountKeys(t, f, mux, o)
		},
	})
	return g
}

// peer is a second instance of the key service on the same database and
// clock.
func (g *fixture) peer(t testing.TB, o options) *fixture {
	t.Helper()
	p := &fixture{}
	p.Fixture = g.Peer(t, authtest.Options{Mount: func(f *authtest.Fixture, mux *http.ServeMux) {
		p.svc, p.keys = mountKeys(t, f, mux, o)
	}})
	return p
}

func mountKeys(t testing.TB, f *authtest.Fixture, mux *http.ServeMux, o options) (*apikey.Service, *apikey.Handler) {
	t.Helper()
	cfg := o.cfg
	cfg.Pool, cfg.Events, cfg.Now, cfg.Logger = f.Pool, f.Events, f.Clock.Now, f.Logger
	if cfg.Registerer == nil {
		cfg.Registerer = f.Registry
	}
	svc, err := apikey.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Close()) })
	h, err := apikey.NewHandler(svc, apikey.HandlerOptions{Tokens: f.Tokens, ServiceKey: o.serviceKey, Logger: f.Logger})
	require.NoError(t, err)
	inner := http.StripPrefix(prefix, h)
	for _, p := range h.Routes() {
		method, path, _ := strings.Cut(p, " ")
		mux.Handle(method+" "+prefix+path, inner)
	}
	mux.Handle(prefix+"/", inner)
	return svc, h
}

// user is a registered account with a Bearer header.
type user struct {
	ID    uuid.UUID
	Email string
	auth  map[string]string
}

// user registers email (the fixture does not require verification).
func (g *fixture) user(t testing.TB, email string) user {
	t.Helper()
	st, body, _ := g.Call(t, "POST", authtest.AuthPrefix+"/register",
		map[string]any{"email": email, "password": authtest.StrongPassword}, nil)
	require.Equal(t, http.StatusCreated, st, "register %s: %v", email, body)
	u := user{ID: uuid.MustParse(authtest.UserOf(t, body)["id"].(string)), Email: email}
	g.reauth(t, &u)
	return u
}

// reauth gives u a fresh access token (after the clock moved past the
// old one's expiry).
func (g *fixture) reauth(t testing.TB, u *user) {
	t.Helper()
	tok, _, err := g.Tokens.Issue(u.ID, u.Email, uuid.New())
	require.NoError(t, err)
	u.auth = authtest.Bearer(tok)
}

// create makes a key as u and returns the key and its id.
func (g *fixture) create(t testing.TB, u user, body map[string]any) (key, id string) {
	t.Helper()
	st, out, _ := g.Call(t, "POST", prefix, body, u.auth)
	require.Equal(t, http.StatusCreated, st, "create %v: %v", body, out)
	key, _ = out["key"].(string)
	ak, _ := out["apiKey"].(map[string]any)
	id, _ = ak["id"].(string)
	require.NotEmpty(t, key, "%v", out)
	require.NotEmpty(t, id, "%v", out)
	return key, id
}

// validate posts to /validate with the service key and returns the answer.
func (g *fixture) validate(t testing.TB, key, scope string) map[string]any {
	t.Helper()
	body := map[string]any{"key": key}
	if scope != "" {
		body["scope"] = scope
	}
	st, out, _ := g.Call(t, "POST", prefix+"/validate", body, map[string]string{apikey.ServiceKeyHeader: serviceKey})
	require.Equal(t, http.StatusOK, st, "validate: %v", out)
	return out
}

// lastUsedWrites installs, in the test's own database, a trigger that
// counts the UPDATEs that change last_used_at, and returns a reader of the
// count: what the database saw, whatever the code claims.
func lastUsedWrites(t testing.TB, g *fixture) func() int {
	t.Helper()
	_, err := g.DB.Owner.Exec(context.Background(), `
		CREATE TABLE public.last_used_writes (n int NOT NULL);
		INSERT INTO public.last_used_writes VALUES (0);
		GRANT UPDATE, SELECT ON public.last_used_writes TO mana_auth_runtime;
		CREATE FUNCTION public.count_last_used() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		  IF NEW.last_used_at IS DISTINCT FROM OLD.last_used_at THEN
		    UPDATE public.last_used_writes SET n = n + 1;
		  END IF;
		  RETURN NEW;
		END $$;
		CREATE TRIGGER count_last_used AFTER UPDATE ON auth.api_keys
		  FOR EACH ROW EXECUTE FUNCTION public.count_last_used();`)
	require.NoError(t, err)
	return func() int { return g.OwnerInt(t, `SELECT n FROM public.last_used_writes`) }
}

// storedLastUsed reads a key's last_used_at as stored.
func (g *fixture) storedLastUsed(t testing.TB, id string) *time.Time {
	t.Helper()
	var at *time.Time
	require.NoError(t, g.DB.Owner.QueryRow(context.Background(),
		`SELECT last_used_at FROM auth.api_keys WHERE id = $1`, id).Scan(&at))
	return at
}
