package spaces

import (
	"embed"

	"github.com/mana-how/mana-auth/migrate"
)

// Migrations holds the SQL files that create the tables this package owns
// (auth.spaces, auth.space_members, auth.space_invitations), applied after
// manaauth's (they reference auth.users).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Source returns this package's migrations with the schema contract its
// code relies on, for migrate.New and migrate.CheckContract. Its first file
// was shipped as manaauth's 0003_spaces.sql; a database that applied it
// under that name counts it as applied (migrate.Source.Formerly).
func Source() migrate.Source {
	return migrate.Source{
		Name:     "spaces",
		FS:       Migrations,
		Dir:      "migrations",
		Formerly: map[string]string{"0001_spaces.sql": "manaauth/0003_spaces.sql"},
		Contract: []migrate.TableColumns{
			{Schema: "auth", Table: "spaces", Columns: []string{"id", "name", "type", "created_at", "created_by"}},
			{Schema: "auth", Table: "space_members", Columns: []string{"space_id", "user_id", "role", "joined_at"}},
			{Schema: "auth", Table: "space_invitations", Columns: []string{
				"id", "space_id", "email", "role", "token_hash", "invited_by", "created_at", "expires_at",
				"accepted_at", "revoked_at", "accepted_by",
			}},
		},
	}
}
