package manaauth

import (
	"embed"

	"github.com/mana-how/mana-auth/migrate"
)

// Migrations holds the SQL files that create the tables this package owns
// (auth.users, …), applied after migrate.Foundation.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Source returns this package's migrations with the schema contract its code
// relies on, for migrate.New and migrate.CheckContract.
func Source() migrate.Source {
	return migrate.Source{
		Name: "manaauth",
		FS:   Migrations,
		Dir:  "migrations",
		Contract: []migrate.TableColumns{
			{Schema: "auth", Table: "users", Columns: []string{
				"id", "email", "name", "image", "password_hash", "email_verified_at", "created_at", "updated_at",
			}},
		},
	}
}
