// Package gdpr gathers what every package stores about a user into one
// export (GDPR Article 20) and erases it with the account (Article 17):
// api.md's GDPR section, GET and DELETE /api/v1/me/data.
//
// Each package that owns rows about a user implements Exporter for its own
// tables, and the host lists them in Config.Exporters; gdpr itself knows no
// table. An exporter writes one section per table, named "schema.table", as
// JSON rows straight from PostgreSQL (Writer.Query), and never a secret:
// token hashes, key hashes, wrapped keys and TOTP secrets stay out of the
// column lists. The completeness test of the reference server lists every
// table with a user_id or email column and fails when one is neither
// exported nor named in its commented exclusion list, so a package that
// lands later (passkey, mfa) is caught until it implements Exporter and
// the host lists it.
//
// # Export
//
// Service.Export reads every section in one REPEATABLE READ, READ ONLY
// transaction — one snapshot, so sections never disagree — with
// app.current_user_id set to the user (the row-level security of the vault
// and the decrypt audit shows the user's rows, and nobody else's) and the
// time zone UTC. Rows are copied to the client as PostgreSQL encodes them,
// one at a time through a small buffer, never gathered in memory, so an
// export of any size holds about the same memory. The answer is
//
//	{"exportedAt": "…", "user": {…}, "sections": {"auth.sessions": [{…}, …], …}}
//
// with a row as an object of the table's column names. The export writes
// DATA_EXPORTED (Config.Exported) before the snapshot, so the export holds
// its own event, and is refused when that event cannot be written. The
// handler limits exports per user (HandlerOptions.Limiter; 5 per hour in
// the reference server), since an export reads everything.
//
// # Erasure
//
// Service.Erase runs every exporter's EraseData inside the transaction
// that deletes the account, before the user row goes: wire it into
// manaauth's Hooks.UserDeletingTx, so DELETE /api/v1/auth/account and
// DELETE /api/v1/me/data are one code path (the password re-check through
// the lock gate, the refusals of the other hooks, one transaction).
// Rows that reference auth.users with ON DELETE CASCADE go with the user
// row; EraseData covers what the cascade cannot reach: rows keyed by email
// address (login attempts, lockout counters, invitations) and security
// events, which keep their type and time and lose user id, IP address,
// user agent and metadata.
//
// # Subjects
//
// Login attempts and invitations are keyed by address, not by account.
// Config.Addresses (lockout keeps the history of the addresses each account
// held) names the addresses attributed to the account: the one it holds
// now, and earlier ones no other account holds now.
//
// A typical wiring (the reference server's):
//
//	data, _ := gdpr.New(gdpr.Config{Pool: pool, Users: accounts, Addresses: gate,
//		Exporters: []gdpr.Exporter{accounts, gate, spaces, keys, vaults, audit, boot},
//		Exported: func(ctx context.Context, userID uuid.UUID, c gdpr.Client) error { … DATA_EXPORTED … }})
//	hooks.UserDeletingTx = func(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
//		if err := spaces.CheckUserDeletable(ctx, tx, userID); err != nil {
//			return err
//		}
//		return data.Erase(ctx, tx, userID)
//	}
//	h, _ := gdpr.NewHandler(data, gdpr.HandlerOptions{Limiter: perUser, Delete: deleteAccount})
//	mux.Handle("GET /api/v1/me/data", bearer(http.StripPrefix("/api/v1/me/data", h)))
//	mux.Handle("DELETE /api/v1/me/data", bearer(http.StripPrefix("/api/v1/me/data", h)))
package gdpr
