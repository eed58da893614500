package passkey

import (
	"embed"

	"github.com/mana-how/mana-auth/migrate"
)

// Migrations holds the SQL files of auth.passkeys and
// auth.passkey_challenges, applied after manaauth's (both refer to
// auth.users).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Source returns this package's migrations with the schema contract its
// code relies on, for migrate.New and migrate.CheckContract.
func Source() migrate.Source {
	return migrate.Source{
		Name: "passkey",
		FS:   Migrations,
		Dir:  "migrations",
		Contract: []migrate.TableColumns{
			{Schema: "auth", Table: "passkeys", Columns: []string{
				"id", "user_id", "credential_id", "public_key", "sign_count", "aaguid", "transports",
				"backup_eligible", "backup_state", "name", "created_at", "last_used_at"}},
			{Schema: "auth", Table: "passkey_challenges", Columns: []string{
				"id", "ceremony", "user_id", "session", "created_at", "expires_at", "used_at"}},
		},
	}
}
