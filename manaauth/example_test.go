package manaauth_test

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/web"
)

// How a Go service embeds the accounts package: its own mux, the auth
// handler under /api/v1/auth, and its own routes behind the JWT middleware
// (which verifies tokens locally, without the database).
func Example() {
	pool := exampleDatabase() // *pgxpool.Pool logged in as migrate.RuntimeRole
	logger := slog.New(slog.DiscardHandler)

	key, _ := manaauth.GenerateSigningKey(rand.Reader) // production: manaauth.ParseSigningKeyPEM
	tokens, _ := manaauth.NewTokens(manaauth.TokenConfig{Issuer: "https://auth.example.com", Audience: "mana", Signing: key})
	hasher, _ := manaauth.NewHasher(manaauth.HasherConfig{})
	events, _ := lockout.NewEvents(lockout.EventsConfig{Pool: pool, Logger: logger})
	gate, _ := lockout.New(lockout.Config{Pool: pool, Events: events, Logger: logger})
	base, _ := url.Parse("https://app.example.com")
	svc, err := manaauth.New(manaauth.Config{
		Pool: pool, Hasher: hasher, Tokens: tokens, Gate: gate, Events: events,
		Mailer: manaauth.LogMailer{Logger: logger}, Links: manaauth.Links{BaseURL: base},
		RequireEmailVerification: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()

	mux := http.NewServeMux()
	mux.Handle("/api/v1/auth/", http.StripPrefix("/api/v1/auth", manaauth.NewHandler(svc, manaauth.HandlerOptions{Logger: logger})))
	mux.Handle("GET /.well-known/jwks.json", tokens.JWKSHandler())
	mux.Handle("GET /api/v1/me/hello", manaauth.Middleware(tokens)(web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		c, _ := manaauth.ClaimsFromContext(r.Context())
		return web.JSON(w, http.StatusOK, map[string]string{"hello": c.Email})
	})))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/me/hello", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate")) // no token
	// Output:
	// 401 Bearer
}
