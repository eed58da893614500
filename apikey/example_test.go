package apikey_test

import (
	"fmt"

	"github.com/mana-how/mana-auth/apikey"
)

// Scopes are checked and repeats dropped before a key is stored.
func ExampleNormalizeScopes() {
	scopes, problem := apikey.NormalizeScopes([]string{"deploy:write", "read", "deploy:write"})
	fmt.Println(scopes, problem == "")
	_, problem = apikey.NormalizeScopes([]string{"read", "Admin"})
	fmt.Println(problem)
	// Output:
	// [deploy:write read] true
	// scopes[1] must match ^[a-z][a-z0-9:._-]{0,63}$
}

// A string that is not shaped like a key is unknown without a lookup.
func ExampleWellFormed() {
	fmt.Println(apikey.WellFormed("sk_live_0123456789abcdefghijABCDEFGHIJ0123456789abc"))
	fmt.Println(apikey.WellFormed("sk_live_short"))
	// Output:
	// true
	// false
}
