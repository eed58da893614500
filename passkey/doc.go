// Package passkey makes WebAuthn passkeys a credential of mana-auth
// accounts (api.md "Passkeys"): registration for a signed-in user, sign-in
// with or without an address, and the user's list, rename and delete. The
// ceremonies are go-webauthn's; the challenges live in PostgreSQL so any
// instance verifies what another issued; a successful sign-in starts its
// session through manaauth exactly as a password login does.
//
// # Typical flow
//
//	svc, _ := passkey.New(passkey.Config{Accounts: accounts, Pool: pool, RPID: "example.com",
//		Origins: []string{"https://example.com"}, Mailer: mailer, DecoyKey: key})
//	h, _ := passkey.NewHandler(svc, passkey.HandlerOptions{Tokens: tokens, Live: live})
//	mux.Handle("/api/v1/auth/passkeys/", http.StripPrefix("/api/v1/auth/passkeys", h))
//
// Registering: POST /register/options (Bearer, a session signed in within
// the last 10 minutes) answers {challengeId, options}; the page passes
// options to navigator.credentials.create() and posts the credential to
// /register/verify. Signing in: POST /authenticate/options ({email} or
// nothing for a usernameless sign-in), navigator.credentials.get(), POST
// /authenticate/verify, which answers like /login: the token pair and the
// session cookie.
//
// # Decisions
//
//   - The user handle is the account's id (16 bytes). A usernameless
//     sign-in finds the account through the credential id and requires the
//     handle to match it.
//   - A challenge is single use (one conditional UPDATE), lives
//     ChallengeTTL, is bound to its ceremony and, for registration, to the
//     user. The first verification that names it for its own ceremony
//     spends it, whatever the outcome; a verification naming it for the
//     other ceremony, another user, or after it expired changes nothing.
//   - Options for an address without passkeys list stand-in credentials
//     derived from the address (HMAC under Config.DecoyKey), the same on
//     every call: the answer does not reveal the account.
//   - Clone signals — a signature counter that did not grow, a user handle
//     that is not the owner's, a backup eligibility that differs from the
//     stored one — refuse the assertion (401) and write
//     PASSKEY_CLONE_SUSPECTED, but only once the stored key's signature
//     verified: an unsigned mismatch is just a failure.
//   - Sign-in failures are recorded (auth.login_attempts, PASSKEY_LOGIN_FAILURE)
//     but never count toward the password lockout (a signature cannot be
//     guessed; counting would let anyone who knows a credential id lock its
//     owner out). They count in limits of their own: 10 per minute per
//     credential (per IP for credentials nobody registered) start a 5-minute
//     cooldown. The options routes take 20 per minute per IP.
//   - A sign-in with user verification satisfies MFA by itself; without
//     it, an account with an active second factor answers that factor's
//     challenge (manaauth.MFAChallenge) instead of tokens.
//   - The last passkey of an account without a password cannot be deleted
//     (409 CONFLICT, reason last_credential).
//   - Passkeys are named after their authenticator when its AAGUID is in a
//     small table (Authenticator), else DefaultName; the notice mail of a
//     new passkey names the authenticator, never the user-chosen name.
//   - Credentials are model-shaped CRUD and use bun (over pgx's stdlib
//     adapter on the same pool); the sign-in path and the challenges use
//     pgx. Public keys are not secrets, so auth.passkeys has no row-level
//     security: a sign-in looks a credential up before it knows the user.
package passkey
