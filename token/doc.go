// Package token issues and verifies mana-auth's access tokens: EdDSA
// (Ed25519) JWTs with a kid from our own key set, the JWKS that publishes
// the keys, the bearer middleware that puts the claims in the request
// context, and a verify-only Checker for services that hold no private
// key. It imports no database driver and nothing of the accounts stack, so
// a host that only checks tokens — or mounts only the vault behind the
// middleware — imports token and nothing of manaauth.
//
// # Typical flow
//
// The auth server signs; every route that needs a user sits behind the
// middleware:
//
//	key, _ := token.ParseSigningKeyPEM(pemBytes) // MANA_AUTH_SIGNING_KEY
//	tokens, _ := token.New(token.Config{Issuer: "https://auth.example.com", Audience: "mana", Signing: key})
//	access, expires, _ := tokens.Issue(userID, email, sessionID)
//	mux.Handle("GET /.well-known/jwks.json", tokens.JWKSHandler())
//	mux.Handle("GET /api/v1/me/hello", token.Middleware(tokens)(hello))
//
// A service elsewhere verifies the same tokens from the public keys only:
//
//	check, _ := token.NewChecker(token.CheckerConfig{Issuer: "https://auth.example.com",
//		Audience: "mana", JWKSURL: "https://auth.example.com/.well-known/jwks.json"})
//	mux.Handle("GET /api/v1/things", token.Middleware(check)(things))
//
// Inside a handler, token.UserFromRequest(r) (or ClaimsFromContext) is the
// caller.
//
// # Decisions
//
// One algorithm (EdDSA); only the header parameters alg, kid and typ
// ("at+jwt", RFC 9068) — jku, jwk, x5u, x5c and crit are refused, never
// honoured; iss, aud, sub, sid, iat, exp and typ "access" required; 30
// seconds of clock skew. Every failure is TOKEN_INVALID except a token
// valid in every respect but expired (TOKEN_EXPIRED); the precise reason
// goes to the log only. A key set that cannot be fetched is
// SERVICE_UNAVAILABLE, never a 401. A JWKS is fetched at most once per
// minute whatever kid a client sends, and a fetched set is used for five
// minutes (the server serves it with max-age=300).
package token
