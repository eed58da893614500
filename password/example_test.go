package password_test

import (
	"context"
	"fmt"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/password"
)

// A new password passes the policy before it is hashed; a sign-in verifies
// against the stored PHC string.
func Example() {
	ctx := context.Background()
	h, err := password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 1024, Time: 1}}) // cheap for the example; zero: m=19 MiB, t=2
	if err != nil {
		fmt.Println(err)
		return
	}
	var policy password.Policy
	fmt.Println(autherr.CodeOf(policy.Check("password1", "alice@example.com")))
	fmt.Println(policy.Check("tangerine-orbit-4711", "alice@example.com"))

	phc, _ := h.Hash(ctx, "tangerine-orbit-4711")
	ok, rehash, err := h.Verify(ctx, "tangerine-orbit-4711", phc)
	fmt.Println(ok, rehash, err)
	ok, _, _ = h.Verify(ctx, "tangerine-orbit-4712", phc)
	fmt.Println(ok)
	// Output:
	// WEAK_PASSWORD
	// <nil>
	// true false <nil>
	// false
}
