// Package migrate applies the SQL migrations of mana-auth's packages and
// checks that the live schema still matches what the code expects.
//
// Each package that owns tables embeds its SQL files and exports them
// (manaauth.Migrations, …); a host lists the sources it mounts, Foundation
// first, and runs them with the owner of the tables:
//
//	m, err := migrate.New(migrate.Config{
//		Pool:    ownerPool,
//		Sources: []migrate.Source{migrate.Foundation(), manaauth.Source()},
//	})
//	applied, err := m.Up(ctx)
//
// Up holds a session advisory lock, applies each file not applied yet in its
// own transaction together with its row in public.mana_auth_schema_migrations
// (source, name, SHA-256 checksum, applied_at), and is idempotent: running it
// again, or from several instances at once, applies each file exactly once.
// A file whose contents changed after it was applied stops the run.
//
// At run time, through the runtime role, Pending reports files not yet
// applied and CheckContract reports tables and columns the code uses that
// the live catalogue lacks (schema drift); a server answers not-ready while
// either is non-empty. CurrentRole tells whether the runtime connection is
// bound by row-level security.
package migrate
