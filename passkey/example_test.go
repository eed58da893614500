package passkey_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/passkey"
	"github.com/mana-how/mana-auth/token"
)

// How a host mounts passkeys beside sign-up and login: the passkey
// service starts its sessions through the account service and shares its
// pool; the handler puts the management routes behind the bearer token
// and the live-session check.
func Example() {
	pool, _ := pgxpool.New(context.Background(), "postgres://mana_auth_runtime@127.0.0.1:5432/app") // connects on first use
	key, _ := token.GenerateSigningKey(rand.Reader)
	tokens, _ := token.New(token.Config{Issuer: "https://example.com", Audience: "mana", Signing: key})
	base, _ := url.Parse("https://example.com")
	accounts, _ := manaauth.New(manaauth.Config{Pool: pool, Tokens: tokens, Mailer: mail.LogMailer{}, Links: mail.Links{BaseURL: base}})
	defer accounts.Close()
	decoyKey, _ := tokens.DeriveKey("mana-auth passkey decoys v1", 32) // the same on every instance

	svc, err := passkey.New(passkey.Config{Accounts: accounts, Pool: pool, RPID: "example.com",
		Origins: []string{"https://example.com"}, Mailer: mail.LogMailer{}, DecoyKey: decoyKey})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()
	live, _ := token.NewLiveSessions(token.LiveSessionsConfig{Checker: accounts})
	h, _ := passkey.NewHandler(svc, passkey.HandlerOptions{Tokens: tokens, Live: live})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/auth/passkeys/", http.StripPrefix("/api/v1/auth/passkeys", h))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/auth/passkeys/capability", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/auth/passkeys/", nil))
	fmt.Println(rec.Code, len(h.Routes()), "routes")
	// Output:
	// 200 {"available":true}
	// 401 8 routes
}

// A server whose public URL browsers would not run WebAuthn on mounts the
// routes without a service: the capability says so.
func ExampleNewHandler_notConfigured() {
	base, _ := url.Parse("http://auth.internal:8080")
	var svc *passkey.Service // nil: not configured
	if passkey.SecureOrigin(base) {
		fmt.Println("would configure passkeys")
	}
	h, _ := passkey.NewHandler(svc, passkey.HandlerOptions{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/capability", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 200 {"available":false}
}
