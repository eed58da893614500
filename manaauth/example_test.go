package manaauth_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// How a Go service mounts sign-up and login: three constructors beyond the
// pool — the token signer, the account service (which builds its password
// hasher and lockout gate on the pool unless given others) and its
// handler — and its own routes behind the bearer middleware, which
// verifies tokens locally, without the database.
func Example() {
	pool := exampleDatabase() // *pgxpool.Pool logged in as migrate.RuntimeRole

	key, _ := token.GenerateSigningKey(rand.Reader) // production: token.ParseSigningKeyPEM
	tokens, _ := token.New(token.Config{Issuer: "https://auth.example.com", Audience: "mana", Signing: key})
	base, _ := url.Parse("https://app.example.com")
	svc, err := manaauth.New(manaauth.Config{Pool: pool, Tokens: tokens, Mailer: mail.LogMailer{},
		Links: mail.Links{BaseURL: base}, RequireEmailVerification: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()

	mux := http.NewServeMux()
	mux.Handle("/api/v1/auth/", http.StripPrefix("/api/v1/auth", manaauth.NewHandler(svc, manaauth.HandlerOptions{})))
	mux.Handle("GET /.well-known/jwks.json", tokens.JWKSHandler())
	mux.Handle("GET /api/v1/me/hello", token.Middleware(tokens)(web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		c, _ := token.ClaimsFromContext(r.Context())
		return web.JSON(w, http.StatusOK, map[string]string{"hello": c.Email})
	})))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/me/hello", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate")) // no token
	// Output:
	// 401 Bearer
}
