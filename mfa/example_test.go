package mfa_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/mfa"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/vault"
)

// How a host adds the second factor to its sign-in: the challenges go
// into the account service's config, the mfa service is built on the
// account service, and its handler is mounted beside the auth handler.
func Example() {
	pool, _ := pgxpool.New(context.Background(), "postgres://mana_auth_runtime@127.0.0.1:5432/app") // connects on first use
	keys, _ := vault.NewKeyRing(vault.KEK{ID: "1", Key: make([]byte, 32)})                          // production: vault.KeyRingFromEnv
	key, _ := token.GenerateSigningKey(rand.Reader)
	tokens, _ := token.New(token.Config{Issuer: "https://auth.example.com", Audience: "mana", Signing: key})
	base, _ := url.Parse("https://app.example.com")

	challenges, _ := mfa.NewChallenges(mfa.ChallengesConfig{Pool: pool})
	accounts, _ := manaauth.New(manaauth.Config{Pool: pool, Tokens: tokens, Mailer: mail.LogMailer{},
		Links: mail.Links{BaseURL: base}, SecondFactor: challenges})
	defer accounts.Close()
	svc, err := mfa.New(mfa.Config{Pool: pool, Accounts: accounts, Keys: keys, Mailer: mail.LogMailer{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()
	h, _ := mfa.NewHandler(svc, mfa.HandlerOptions{Tokens: tokens})

	mux := http.NewServeMux()
	mux.Handle("/api/v1/auth/", http.StripPrefix("/api/v1/auth", manaauth.NewHandler(accounts, manaauth.HandlerOptions{})))
	mux.Handle("/api/v1/auth/mfa/", http.StripPrefix("/api/v1/auth/mfa", h))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/auth/mfa/status", nil))
	fmt.Println(rec.Code, strings.Join(h.Routes(), ", ")) // no token
	// Output:
	// 401 POST /totp/enroll, POST /totp/confirm, DELETE /totp, POST /verify, GET /status
}
