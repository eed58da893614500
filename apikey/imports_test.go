package apikey_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestDependencies: a host that mounts API keys needs the pool, token and
// lockout (events), not the account stack.
func TestDependencies(t *testing.T) {
	g := deps.List(t, deps.Module+"/apikey", deps.Module+"/token", deps.Module+"/lockout", "github.com/uptrace/bun")
	g.Forbid(t, deps.Ours("manaauth", "spaces", "passkey", "mfa", "vault", "grant", "bootstrap", "password", "mail"),
		"apikey needs only token, web, lockout, gdpr and autherr below it")
}
