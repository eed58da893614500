package apikey

import (
	"embed"

	"github.com/mana-how/mana-auth/migrate"
)

// Migrations holds the SQL files of auth.api_keys, applied after
// manaauth's (keys refer to auth.users).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Source returns this package's migrations with the schema contract its
// code relies on, for migrate.New and migrate.CheckContract.
func Source() migrate.Source {
	return migrate.Source{
		Name: "apikey",
		FS:   Migrations,
		Dir:  "migrations",
		Contract: []migrate.TableColumns{
			{Schema: "auth", Table: "api_keys", Columns: []string{
				"id", "user_id", "name", "prefix", "key_hash", "scopes", "created_at", "expires_at",
				"last_used_at", "revoked_at"}},
		},
	}
}
