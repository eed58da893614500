package mfa

import (
	"embed"

	"github.com/mana-how/mana-auth/migrate"
)

// Migrations holds the SQL files of auth.mfa_factors,
// auth.mfa_recovery_codes and auth.mfa_challenges, applied after
// manaauth's (they reference auth.users).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Source returns this package's migrations with the schema contract its
// code relies on.
func Source() migrate.Source {
	return migrate.Source{
		Name: "mfa",
		FS:   Migrations,
		Dir:  "migrations",
		Contract: []migrate.TableColumns{
			{Schema: "auth", Table: "mfa_factors", Columns: []string{
				"id", "user_id", "kind", "status", "secret_sealed", "secret_iv", "kek_id", "format_version",
				"last_step", "created_at", "confirmed_at", "last_used_at"}},
			{Schema: "auth", Table: "mfa_recovery_codes", Columns: []string{
				"id", "factor_id", "user_id", "code_hash", "created_at", "used_at"}},
			{Schema: "auth", Table: "mfa_challenges", Columns: []string{
				"id", "token_hash", "user_id", "method", "created_at", "expires_at", "used_at"}},
		},
	}
}
