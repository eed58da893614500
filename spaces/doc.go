// Package spaces owns organizations — spaces, called guilds on the wire —
// with their members, roles and invitations: api.md's Organizations
// section, mounted under /api/v1/guilds.
//
// # Typical flow
//
// A host builds the service and wires it into the account life cycle
// through manaauth's hooks (manaauth does not import spaces):
//
//	sp, _ := spaces.New(spaces.Config{Pool: pool, Mailer: mailer, Links: links})
//	accounts, _ := manaauth.New(manaauth.Config{…, Hooks: manaauth.Hooks{
//		UserCreatedTx: func(ctx context.Context, tx pgx.Tx, u manaauth.User) error {
//			_, err := sp.CreatePersonalTx(ctx, tx, u.ID) // a Personal space at signup
//			return err
//		},
//		UserDeletingTx: sp.CheckUserDeletable, // the only owner of a shared space stays
//	}})
//	h, _ := spaces.NewHandler(sp, spaces.HandlerOptions{Tokens: tokens})
//	mux.Handle("/api/v1/guilds/", http.StripPrefix("/api/v1/guilds", h))
//
// Its migration comes after manaauth's (spaces.Source()).
//
// # Decisions
//
// Roles are owner, admin and member, only in those spellings. Every query
// is scoped by the caller's membership, so a space the caller does not
// belong to answers 404 and changes nothing. The last owner cannot leave
// or step down; membership changes serialise on the space's row.
// Invitations carry a 256-bit single-use token stored as its SHA-256,
// last 7 days, and are accepted only by a verified account with the
// invited address.
package spaces
