package vault_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/vault"
)

// How a Go service mounts only the vault, behind the tokens of an auth
// server it does not run: three constructors beyond the pool, and nothing
// of the accounts stack (token verifies with the server's public keys).
func Example_mountOnlyTheVault() {
	pool, _ := pgxpool.New(context.Background(), "postgres://mana_auth_runtime@127.0.0.1:5432/app") // connects on first use
	kek := make([]byte, 32)                                                                         // production: base64-decoded MANA_AUTH_KEK

	check, _ := token.NewChecker(token.CheckerConfig{Issuer: "https://auth.example.com", Audience: "mana",
		JWKSURL: "https://auth.example.com/.well-known/jwks.json"})
	svc, _ := vault.New(vault.Config{Pool: pool, KEK: kek})
	h, _ := vault.NewHandler(svc, vault.HandlerOptions{}) // the user comes from token.Middleware's claims

	const prefix = "/api/v1/me/encryption-vault"
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", token.Middleware(check)(http.StripPrefix(prefix, h)))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", prefix+"/status", nil))
	fmt.Println(rec.Code) // no token
	// Output:
	// 401
}

func ExampleParseKEKs() {
	// MANA_AUTH_KEKS: the new KEK first (active), the old one still there
	// until Rewrap has moved every row.
	kr, err := vault.ParseKEKs("", "2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=,1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
	if err != nil {
		panic(err)
	}
	fmt.Println(kr.ActiveKEKID(), kr.IDs())
	user := uuid.MustParse("0b6f1d1e-8a4c-4e53-9a43-4f0d2b8f6c11")
	w, err := vault.Wrap(context.Background(), kr, user, make([]byte, 32))
	if err != nil {
		panic(err)
	}
	_, err = vault.Unwrap(context.Background(), kr, uuid.New(), w)
	fmt.Println(w.KEKID, err == vault.ErrUnwrap)
	// Output:
	// 2 [2 1]
	// 2 true
}
