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
				"id", "email", "name", "image", "password_hash", "email_verified_at", "created_at", "updated_at", "disabled_at",
			}},
			{Schema: "auth", Table: "sessions", Columns: []string{
				"id", "user_id", "cookie_hash", "ip_address", "user_agent", "created_at", "last_used_at", "expires_at",
				"revoked_at", "revoke_reason", "method",
			}},
			{Schema: "auth", Table: "refresh_tokens", Columns: []string{
				"id", "session_id", "parent_id", "token_hash", "created_at", "expires_at", "spent_at",
			}},
			{Schema: "auth", Table: "one_time_tokens", Columns: []string{
				"id", "user_id", "purpose", "token_hash", "new_email", "created_at", "expires_at", "used_at", "voided_at",
			}},
			{Schema: "auth", Table: "signup_counts", Columns: []string{"day", "count"}},
		},
	}
}
