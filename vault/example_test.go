package vault_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/vault"
)

// A host mounts the vault behind its own authentication. With manaauth the
// user function is built on token.ClaimsFromContext and the handler is
// wrapped in token.Middleware.
func ExampleNewHandler() {
	var svc *vault.Service // vault.New(vault.Config{Pool: runtimePool, Keys: ring}); compiled, not run
	h, err := vault.NewHandler(svc, vault.HandlerOptions{
		UserFromRequest: func(r *http.Request) (uuid.UUID, error) {
			// c, ok := token.ClaimsFromContext(r.Context()); if ok { return c.UserID() }
			return uuid.Nil, autherr.New(autherr.Unauthorized, "")
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	const prefix = "/api/v1/me/encryption-vault"
	mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
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
