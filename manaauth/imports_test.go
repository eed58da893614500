package manaauth_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestNoCapabilityAbove: manaauth reaches spaces only through the hooks
// the host wires; an import of spaces (or passkey, apikey, mfa) in a
// non-test file of manaauth fails it.
func TestNoCapabilityAbove(t *testing.T) {
	g := deps.List(t, deps.Module+"/manaauth", deps.Module+"/token", deps.Module+"/password", deps.Module+"/mail")
	g.Forbid(t, deps.Ours("spaces", "passkey", "mfa", "apikey", "bootstrap", "vault", "grant"),
		"a host that mounts only login must not construct the other capabilities")
}
