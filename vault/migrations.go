package vault

import (
	"embed"

	"github.com/mana-how/mana-auth/migrate"
)

// Migrations holds the SQL files of auth.encryption_vaults and
// auth.encryption_vault_audit, applied after manaauth's (both refer to
// auth.users).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Source returns this package's migrations with the schema contract its code
// relies on.
func Source() migrate.Source {
	return migrate.Source{
		Name: "vault",
		FS:   Migrations,
		Dir:  "migrations",
		Contract: []migrate.TableColumns{
			{Schema: "auth", Table: "encryption_vaults", Columns: []string{
				"user_id", "wrapped_mk", "wrap_iv", "kek_id", "format_version",
				"recovery_wrapped_mk", "recovery_iv", "recovery_format_version", "recovery_set_at",
				"zero_knowledge", "created_at", "rotated_at", "key_check"}},
			{Schema: "auth", Table: "encryption_vault_audit", Columns: []string{
				"id", "user_id", "action", "ip_address", "user_agent", "http_status", "context", "created_at"}},
		},
	}
}
