package spaces_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/spaces"
	"github.com/mana-how/mana-auth/token"
)

// How a host mounts organizations: the service (invitations are mailed,
// with links from the base URL), its handler behind the bearer tokens,
// and — in the host's manaauth.Config — the two hooks of the package doc.
func Example() {
	pool, _ := pgxpool.New(context.Background(), "postgres://mana_auth_runtime@127.0.0.1:5432/app") // connects on first use
	base, _ := url.Parse("https://app.example.com")
	key, _ := token.GenerateSigningKey(rand.Reader)
	tokens, _ := token.New(token.Config{Issuer: "https://auth.example.com", Audience: "mana", Signing: key})

	svc, err := spaces.New(spaces.Config{Pool: pool, Mailer: mail.LogMailer{}, Links: mail.Links{BaseURL: base}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()
	h, _ := spaces.NewHandler(svc, spaces.HandlerOptions{Tokens: tokens})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/guilds/", http.StripPrefix("/api/v1/guilds", h))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/guilds/", nil))
	fmt.Println(rec.Code, len(h.Routes()), "routes")
	// Output:
	// 401 12 routes
}
