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
//
// # Sessions
//
// Every sign-in is a session (auth.sessions) with its method (password,
// passkey, or mfa for a password completed by a second factor), where it
// started, and its refresh-token family. The handler serves api.md's
// Sessions routes (GET /sessions, DELETE /sessions/{id},
// POST /sessions/revoke-others) behind the live-session check
// (token.LiveSessions, which Service.SessionActive backs): access tokens
// are stateless, so a revoked session's token is refused by the routes
// that guard secrets within 5 seconds on every instance, at once on the
// one that revoked.
//
// # Other credentials and a second factor
//
// Packages that check other credentials start sessions through
// StartSession: a passkey assertion or a second factor, checked by the
// package that owns it, becomes a login exactly like a password one (the
// gate's success, LOGIN_SUCCESS with the method, the session cookie;
// WriteSignIn answers it). Login asks Config.SecondFactor, when set, after
// every right password; an account with an active factor gets its
// challenge instead of tokens, and the right password clears nothing at
// the gate until the second step succeeds. RequireRecentAuth guards the
// actions api.md marks "recent".
//
// # Operators
//
// Users, UserByEmail, Unlock, Disable, Enable and RevokeAllSessions back
// the reference server's `users` commands; none of them is mounted over
// HTTP. A disabled account cannot sign in by any credential
// (ACCOUNT_DISABLED, only after the credential checked out), its refresh
// tokens stop working and its sessions are revoked.
package manaauth
