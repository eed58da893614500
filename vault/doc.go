// Package vault keeps one encryption master key per user: 32 random bytes
// that the user's clients use to encrypt their data, stored on the server
// only wrapped.
//
// # Keys
//
// The master key is wrapped with AES-256-GCM under a key-encryption key
// (KEK) from a KeyRing (MANA_AUTH_KEK, or several by id in MANA_AUTH_KEKS,
// the first active; see KeyRingFromEnv) or from any KeyWrapper, such as a
// cloud KMS. Every wrap has a fresh random 12-byte IV and associated data
// binding the user id, the KEK id and the format version, so a wrapped key
// copied into another user's row does not open. Every unwrap failure is
// the one value ErrUnwrap, and INTERNAL on the wire.
//
// # Row-level security
//
// auth.encryption_vaults and auth.encryption_vault_audit have FORCE ROW
// LEVEL SECURITY with policies on the transaction-local setting
// app.current_user_id. Every query of this package runs through RunAsUser
// (or Rewrap, which sets the user before each row), as the runtime role,
// which has neither SUPERUSER nor BYPASSRLS: without the setting the role
// sees and changes no row, and the setting ends with the transaction, so a
// pooled connection cannot carry one user's rows into another's request.
// The audit table is append-only for the runtime role.
//
// # Typical flow
//
// A client calls POST /init once (idempotent) and receives the key; later
// sessions call GET /key. The client may store a recovery wrap — the master
// key encrypted on the client under a recovery code the server never sees —
// with POST /recovery-wrap. POST /rotate replaces the key (and wipes the
// recovery wrap, which held the old one); re-encrypting data under the new
// key is the client's job.
//
// # Zero-knowledge mode
//
// POST /zero-knowledge {enable:true} needs a recovery wrap and then deletes
// the server-wrapped copy: from then on GET /key returns only the recovery
// wrap, and only someone with the recovery code can recover the key.
// Rotation and clearing the recovery wrap are refused while it is on.
// {enable:false, masterKey} hands the key back to the server, which wraps it
// again under the active KEK.
//
// So that a wrong key (a client bug, a wrong recovery code) cannot silently
// replace the user's key when the mode is switched off, switching it on
// stores a key check value in auth.encryption_vaults.key_check:
// HMAC-SHA256(master key, "mana-auth vault key check v1") truncated to 16
// bytes. Switching off compares the key sent with it in constant time and
// refuses a mismatch with VALIDATION_FAILED naming masterKey ("does not
// match the key of this vault"), audited, nothing changed; a match clears
// the check value with the mode. The value is a one-way commitment, not a
// copy: HMAC-SHA256 is a pseudorandom function keyed by the master key, so
// its output reveals nothing usable about a 256-bit random key, and finding
// the key from it means searching 2^256 keys. It does let whoever holds the
// database confirm a guessed key — worthless against a random key. Rows
// that were switched on before the column existed (migration
// 0002_zk_key_check.sql) have no check value: switching them off still
// accepts any 32-byte key, as before, and the audit row of that switch
// says keyChecked false. Switching on needs the server-wrapped key to
// unwrap (to derive the value); when it does not, the mode stays off and
// the answer is INTERNAL.
//
// What it protects against: anyone who, after the switch, obtains the
// database and the KEK (an operator, a subpoena, a stolen backup taken after
// the switch plus the environment) cannot read the master key from the live
// row, and the server cannot hand the key to anyone.
//
// What it does not protect against:
//
//   - Old copies. The UPDATE that deletes the server wrap does not erase
//     earlier row versions: they remain in PostgreSQL's write-ahead log, in
//     WAL archives and replicas, in base backups and dumps taken before the
//     switch, and in dead tuples until VACUUM reuses the space. Anyone with
//     such a copy and the KEK that wrapped it can still unwrap the key.
//   - A server that is already compromised when the user enables the mode
//     (or disables it again, which sends the key to the server) sees the key.
//   - The client: zero knowledge is about the server; malware on the user's
//     device sees the key like the user does.
//   - Losing the recovery code: the key is then gone for good.
//
// What an operator does about the old copies: rotate the KEK (put a new key
// first in MANA_AUTH_KEKS, restart, run Rewrap — the reference server has a
// subcommand for it), then, once backups and WAL archives made before the
// switch have expired under the retention policy, remove the old KEK from
// MANA_AUTH_KEKS and destroy it. From then on the old wrapped copies are
// ciphertext without a key. Until then, protect backups as carefully as the
// KEK itself.
//
// # Audit
//
// Every action but status writes a row to auth.encryption_vault_audit:
// action, client IP, user agent, HTTP status and a small context (KEK id,
// error code), failures included; never key material. A successful action's
// row commits with the change; a failed action's row is written in its own
// transaction, and if even that fails it is logged and counted in
// mana_auth_vault_audit_failures_total. Key reads change nothing, so their
// rows are committed together with those of concurrent key reads (group
// commit: one transaction, one WAL flush for many rows); Key hands out the
// key only after its row has committed, and answers the error instead
// when the row cannot be written.
//
// # Mounting
//
// NewHandler serves api.md's routes relative to its mount point; the host
// mounts it under /api/v1/me/encryption-vault with http.StripPrefix, behind
// its authentication, and passes HandlerOptions.UserFromRequest to name the
// user of a request.
package vault
