package grant_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/grant"
)

// The strings of wire format v1 for one grant.
func ExampleLabel() {
	user, mission := "0b6f1d1e-8a4c-4e53-9a43-4f0d2b8f6c11", "weekly-review"
	expires := time.Date(2026, 3, 15, 15, 9, 26, 0, time.UTC)
	fmt.Println(grant.Context(user, mission))
	label := grant.Label(user, mission, expires)
	fmt.Println(label)
	fmt.Println(string(grant.SignedMessage(label, "c2FsdA==", "d3JhcHBlZA==")))
	// Output:
	// mana-ai-mission-grant/v1|0b6f1d1e-8a4c-4e53-9a43-4f0d2b8f6c11|weekly-review
	// mana-ai-mission-grant/v1|0b6f1d1e-8a4c-4e53-9a43-4f0d2b8f6c11|weekly-review|1773587366
	// mana-ai-mission-grant/v1|0b6f1d1e-8a4c-4e53-9a43-4f0d2b8f6c11|weekly-review|1773587366|c2FsdA==|d3JhcHBlZA==
}

// The auth server mounts the issuer behind its authentication, at exactly
// the path (no trailing slash, which would make a subtree pattern).
func ExampleNewHandler() {
	var iss *grant.Issuer // grant.NewIssuer(grant.IssuerConfig{PublicKeyPEM: …, Keys: …, Signer: tokens}); compiled, not run
	h, err := grant.NewHandler(iss, grant.HandlerOptions{
		UserFromRequest: func(r *http.Request) (uuid.UUID, error) {
			// c, ok := token.ClaimsFromContext(r.Context()); if ok { return c.UserID() }
			return uuid.Nil, autherr.New(autherr.Unauthorized, "")
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	const path = "/api/v1/me/ai-mission-grant"
	mux := http.NewServeMux()
	mux.Handle("POST "+path, http.StripPrefix(path, h)) // wrapped in token.Middleware in a real server
}

// The AI side tells refusals apart by reason; an error without a reason is
// infrastructure trouble, worth a retry.
func ExampleReasonOf() {
	u, err := grant.NewUnwrapper(grant.UnwrapperConfig{}) // no MANA_AI_PRIVATE_KEY_PEM
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = u.UnwrapJSON(context.Background(), []byte(`{"wrappedKey":"…"}`))
	fmt.Println(grant.ReasonOf(err))
	fmt.Println(errors.Is(err, &grant.Failure{Reason: grant.ReasonNotConfigured}))
	fmt.Println(grant.ReasonOf(errors.New("connection refused")) == "")
	// Output:
	// not-configured
	// true
	// true
}
