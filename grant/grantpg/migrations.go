package grantpg

import (
	"embed"

	"github.com/mana-how/mana-auth/migrate"
)

// Migrations holds the SQL of mana_ai.decrypt_audit, applied after
// manaauth's (it refers to auth.users).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Source returns this package's migrations with the schema contract its code
// relies on. It goes after manaauth.Source in a host's list.
func Source() migrate.Source {
	return migrate.Source{
		Name: "grant",
		FS:   Migrations,
		Dir:  "migrations",
		Contract: []migrate.TableColumns{
			{Schema: "mana_ai", Table: "decrypt_audit", Columns: []string{
				"id", "user_id", "mission_id", "signature_kid", "expires_at", "outcome", "reason", "attempted_at"}},
		},
	}
}
