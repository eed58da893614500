// Package manaauth owns the user accounts of mana-auth: registration,
// login through the lockout gate, sessions with rotating refresh tokens
// and the web session cookie, email verification, password reset, email
// change, profile, security events, account deletion and the daily signup
// cap — api.md's Auth section, mounted under /api/v1/auth.
//
// It builds on token (access tokens), password (argon2id and the
// policy), mail (the mails and their links) and lockout (the gate and
// security events). Other capabilities take part through Hooks (spaces
// makes the Personal space, bootstrap the singletons); manaauth imports
// none of them.
//
// # Typical flow
//
//	tokens, _ := token.New(token.Config{Issuer: base.String(), Audience: "mana", Signing: key})
//	svc, _ := manaauth.New(manaauth.Config{Pool: pool, Tokens: tokens, Mailer: mailer,
//		Links: mail.Links{BaseURL: base}, RequireEmailVerification: true})
//	defer svc.Close() // waits for mails being sent
//	mux.Handle("/api/v1/auth/", http.StripPrefix("/api/v1/auth", manaauth.NewHandler(svc, manaauth.HandlerOptions{})))
//
// The schema comes from migrate, after migrate.Foundation:
//
//	migrate.New(migrate.Config{Pool: owner, Sources: []migrate.Source{
//		migrate.Foundation(), manaauth.Source(), lockout.Source(),
//	}})
//
// auth.users stores each email canonical (trimmed, lower-cased) under a
// UNIQUE constraint, so addresses are unique case-insensitively.
package manaauth
