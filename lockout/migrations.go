package lockout

import (
	"embed"

	"github.com/mana-how/mana-auth/migrate"
)

// Migrations holds the SQL files of auth.login_attempts, auth.lockouts,
// auth.security_events and auth.user_emails (the history of every
// account's addresses, kept by a trigger on auth.users), applied after
// manaauth's (they refer to auth.users).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Source returns this package's migrations with the schema contract its code
// relies on.
func Source() migrate.Source {
	return migrate.Source{
		Name: "lockout",
		FS:   Migrations,
		Dir:  "migrations",
		Contract: []migrate.TableColumns{
			{Schema: "auth", Table: "login_attempts", Columns: []string{
				"id", "email", "ip_address", "user_agent", "successful", "method", "attempted_at"}},
			{Schema: "auth", Table: "lockouts", Columns: []string{
				"email", "failures", "locked_until", "denied", "updated_at"}},
			{Schema: "auth", Table: "security_events", Columns: []string{
				"id", "event_type", "user_id", "ip_address", "user_agent", "metadata", "created_at"}},
			{Schema: "auth", Table: "user_emails", Columns: []string{
				"id", "user_id", "email", "held_from", "held_until"}},
		},
	}
}
