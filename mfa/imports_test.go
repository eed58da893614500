package mfa_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestNoOtherCapability: mfa builds on manaauth (sessions, the gate) and
// seals with the vault's key ring, and nothing else of the capabilities;
// an import of spaces, passkey, apikey, grant or bootstrap in a non-test
// file of mfa fails it.
func TestNoOtherCapability(t *testing.T) {
	g := deps.List(t, deps.Module+"/mfa", deps.Module+"/manaauth", deps.Module+"/vault", "github.com/pquerna/otp/totp")
	g.Forbid(t, deps.Ours("spaces", "passkey", "apikey", "grant", "bootstrap"),
		"a host that adds a second factor must not construct the other capabilities")
}
