package bootstrap

import (
	"embed"

	"github.com/mana-how/mana-auth/migrate"
)

// Migrations holds the SQL file of mana_sync.sync_changes, applied after
// manaauth's (user_id refers to auth.users).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Source returns this package's migrations with the schema contract its code
// relies on.
func Source() migrate.Source {
	return migrate.Source{
		Name: "bootstrap",
		FS:   Migrations,
		Dir:  "migrations",
		Contract: []migrate.TableColumns{
			{Schema: "mana_sync", Table: "sync_changes", Columns: []string{
				"id", "app_id", "table_name", "record_id", "user_id", "space_id", "op",
				"data", "field_meta", "client_id", "origin", "created_at"}},
		},
	}
}
