// Package mfa is the second factor of sign-in: TOTP (RFC 6238, the codes
// of any authenticator app) with single-use recovery codes — api.md's
// "Multi-factor authentication".
//
// Two types, built on either side of the account service, so that each is
// complete when New returns:
//
//   - Challenges is manaauth's SecondFactor. After a right password (or a
//     passkey sign-in without user verification) the account service asks
//     it whether the user has an active factor; if so it stores a
//     single-use mfaToken (256 bits, kept as SHA-256, 5 minutes, bound to
//     the user and the first step's method) and the login answers
//     {mfaRequired, mfaToken, methods} instead of tokens. It needs only the
//     database.
//   - Service manages factors and completes those sign-ins. It needs the
//     account service (manaauth.Service): Verify passes the same lockout
//     gate as passwords (a wrong code counts like a wrong password, a
//     locked account is refused even with the right code) and starts the
//     session through manaauth.Service.StartSession, which commits the
//     spent mfaToken, the code's time step or the spent recovery code, and
//     the gate's success with the session, in one transaction.
//
// A typical flow, under /api/v1/auth/mfa:
//
//	POST /totp/enroll  {password}   → {secret, otpauthUrl, qrPng}   (recent session; pending)
//	POST /totp/confirm {code}       → {recoveryCodes: [10]}          (active; codes shown once)
//	POST /api/v1/auth/login         → {mfaRequired, mfaToken, methods}
//	POST /verify {mfaToken, code}   → the token pair and session cookie, as /login
//	GET  /status                    → {totp, recoveryCodesLeft}
//	DELETE /totp {code | recoveryCode}                               (recent session)
//
// Codes: HMAC-SHA-1, 6 digits, 30-second steps, one step of skew either
// way, compared in constant time. A code is accepted once: each factor
// remembers the last time step it accepted and takes a code only for a
// later one, in one conditional UPDATE, so of two sign-ins racing with one
// code exactly one succeeds. Recovery codes are 12 symbols of Crockford's
// base32 (60 random bits), stored as SHA-256 of the user id and the code,
// spent by one conditional UPDATE.
//
// The TOTP secret (160 bits) is sealed with AES-256-GCM under the vault's
// KEK ring (vault.KeyWrapper), with associated data binding it to its user
// and factor; it is never stored in clear. The rows are under row-level
// security like the vault's. KEK rotation: Rewrap moves the secrets to the
// active KEK, UnknownKEKs finds secrets under a KEK the ring lost.
//
// Data access is pgx throughout: every write commits with a security event
// (lockout.Events.Insert takes the pgx.Tx) or inside the account
// service's session transaction (manaauth.SignIn.InTx hands one over),
// under the row-level security setting made in that same transaction;
// bun, over database/sql, could not join those transactions.
//
// Enabling and disabling a factor and using a recovery code write
// security events (MFA_ENABLED, MFA_DISABLED, MFA_RECOVERY_CODE_USED) and
// mail the account a notice.
package mfa
