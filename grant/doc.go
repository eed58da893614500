// Package grant implements mission key grants (api.md, "Mission key
// grants"): the auth server hands the AI service a key for one mission of
// one user — never the user's master key — wrapped so that only the AI
// service can open it, bound to user, mission and expiry, and signed so
// that only the auth server can mint it.
//
// # Wire format v1
//
//	context    = "mana-ai-mission-grant/v1|" + userId + "|" + missionId
//	MDK        = HKDF-SHA256(ikm = master key, salt = 32 random bytes, info = context, 32 bytes)
//	label      = context + "|" + expiresAt (Unix seconds)
//	wrappedKey = RSA-OAEP(SHA-256, MGF1-SHA-256, label) of MDK under the AI service's public key
//	signature  = Ed25519(label + "|" + salt (base64) + "|" + wrappedKey (base64)) by the server's token-signing key
//
// The JSON (Grant) is {wrappedKey, derivation:{kdf:"HKDF-SHA256", salt,
// info}, issuedAt, expiresAt, userId, missionId, signature, signatureKid},
// times RFC 3339 UTC in whole seconds, bytes standard padded base64.
// Context, Label and SignedMessage build the strings.
//
// # Issuing (the auth server)
//
// An Issuer reads the user's master key through the KeySource interface
// (the reference server adapts the vault to it), derives the mission data
// key, wraps it under the RSA public key from MANA_AI_PUBLIC_KEY_PEM
// (PKIX or PKCS#1, at least 2048 bits; use 3072, ASVS 5.0 11.2.3), signs
// the grant with the Signer (*token.Tokens: its current signing key,
// whose kid its JWKS publishes) and logs a GRANT_ISSUED event through the
// optional EventLogger. Without a public key every request answers 503
// GRANT_NOT_CONFIGURED; a zero-knowledge vault answers 409 ZK_ACTIVE, no
// vault 404 VAULT_NOT_FOUND. The TTL is clamped to [1 h, 30 d], 24 h by
// default. NewHandler serves it as POST relative to its mount point,
// /api/v1/me/ai-mission-grant behind the host's authentication.
//
// # Unwrapping (the AI service)
//
// An Unwrapper holds the RSA private key (MANA_AI_PRIVATE_KEY_PEM) and the
// auth server's signing public keys: StaticKeys (from PEM, see
// ParseVerifyKeysPEM) or a JWKS fetched from the server and cached, with
// at most one fetch per JWKSConfig.MinRefresh whatever kid is asked for.
// Unwrap verifies the signature before any RSA work and answers the
// 32-byte key or a *Failure with one of the reasons not-configured,
// expired, malformed or wrap-rejected. Every decryption failure is the
// same wrap-rejected error after the same single RSA operation, so the
// answer is no padding oracle; the precise cause goes only to the log.
// The optional Auditor records every attempt; grant/grantpg stores them in
// mana_ai.decrypt_audit.
//
// Importing grant pulls in no database driver (a test lists its
// dependencies); the Postgres store lives in grant/grantpg. A typical AI
// service:
//
//	keys, err := grant.NewJWKS(grant.JWKSConfig{URL: "https://auth.example.com/.well-known/jwks.json"})
//	… // every err checked; a bad key or URL should stop the service at start
//	u, err := grant.NewUnwrapper(grant.UnwrapperConfig{
//		PrivateKeyPEM: []byte(os.Getenv("MANA_AI_PRIVATE_KEY_PEM")),
//		Keys:          keys,
//		Auditor:       store, // grantpg.New(…), optional
//	})
//	mdk, err := u.UnwrapJSON(ctx, grantJSON)
//	switch grant.ReasonOf(err) {
//	case "": // err == nil: use mdk, then clear(mdk); else infrastructure trouble, retry later
//	case grant.ReasonExpired: // ask the user for a new grant
//	default: // refused
//	}
//
// examples/mana-ai is that program, runnable.
package grant
