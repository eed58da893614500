package token_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/token"
)

// The auth server signs access tokens and verifies them locally, without
// a database.
func Example() {
	key, _ := token.GenerateSigningKey(rand.Reader) // production: token.ParseSigningKeyPEM(MANA_AUTH_SIGNING_KEY)
	tokens, err := token.New(token.Config{Issuer: "https://auth.example.com", Audience: "mana", Signing: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	user := uuid.MustParse("6f1f2c1a-3b0e-4d59-9a3e-2a8c1d0e5b71")
	access, _, _ := tokens.Issue(user, "alice@example.com", uuid.New())

	claims, err := tokens.Verify(access)
	fmt.Println(claims.Email, claims.Subject == user.String(), err)
	_, err = tokens.Verify(access + "x")
	fmt.Println(autherr.CodeOf(err))
	// Output:
	// alice@example.com true <nil>
	// TOKEN_INVALID
}

// A service that only checks the tokens of an auth server it does not run
// holds no private key: a Checker on the server's JWKS, and the bearer
// middleware in front of its routes.
func ExampleNewChecker() {
	check, err := token.NewChecker(token.CheckerConfig{
		Issuer: "https://auth.example.com", Audience: "mana",
		JWKSURL: "https://auth.example.com/.well-known/jwks.json", // fetched on the first token
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/things", token.Middleware(check)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := token.UserFromRequest(r)
		fmt.Fprintln(w, "things of", user)
	})))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/things", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	// Output:
	// 401 Bearer
}
