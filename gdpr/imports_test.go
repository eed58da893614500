package gdpr_test

import (
	"testing"

	"github.com/mana-how/mana-auth/internal/deps"
)

// TestLeafDependencies: every package that owns user data imports gdpr,
// so gdpr must import none of them (nor the token stack): an import of
// one would be a cycle or pull it into every other.
func TestLeafDependencies(t *testing.T) {
	g := deps.List(t, deps.Module+"/gdpr", deps.Module+"/autherr", deps.Module+"/web", "github.com/jackc/pgx/v5")
	g.Forbid(t, deps.Ours("manaauth", "lockout", "spaces", "passkey", "mfa", "apikey", "vault", "grant", "bootstrap",
		"token", "password", "mail"), "gdpr sits below every package that owns user data")
}
