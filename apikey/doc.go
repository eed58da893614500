// Package apikey issues, lists, revokes and validates API keys: api.md's
// API keys section, mounted under /api/v1/api-keys.
//
// # Typical flow
//
// A user creates a key for a service of their own and hands it over; the
// service presents it to its backend, which asks this server whether it is
// valid (POST /validate, with the service credential):
//
//	keys, _ := apikey.New(apikey.Config{Pool: pool, Events: events})
//	defer keys.Close() // writes the last uses still in memory
//	h, _ := apikey.NewHandler(keys, apikey.HandlerOptions{Tokens: tokens, ServiceKey: serviceKey})
//	mux.Handle("/api/v1/api-keys/", http.StripPrefix("/api/v1/api-keys", h))
//
// Its migration comes after manaauth's (apikey.Source()).
//
// # Keys
//
// A key is "sk_live_" and 43 base62 characters: 32 bytes from crypto/rand.
// It is shown once, in the answer of Create, and stored only as its
// SHA-256; Prefix (its first 12 characters) is stored to tell keys apart
// in lists. A user holds at most 50 live keys (revoked and expired ones do
// not count); the count and the insert serialise on the user's row.
// Scopes match ^[a-z][a-z0-9:._-]{0,63}$, repeats are dropped, at most 32
// per key. Creating and revoking write API_KEY_CREATED and API_KEY_REVOKED
// in the same transaction.
//
// Revoking marks the row (revoked_at) instead of deleting it, so that
// validation can tell a revoked key ("revoked") from one that never
// existed ("unknown"); revoked keys are not listed, and go with the
// account.
//
// # Validation, the hot path
//
// Validate costs at most one statement — the lookup of the key's SHA-256
// through the unique index — and writes nothing. An in-process cache keeps
// what a lookup found (a key, revoked or not, or no key at all) for
// CacheTTL, 5 seconds by default, at most CacheSize entries of each kind:
// a validation answered from it costs no statement. Expiry and scope are
// checked on every call. A revoke invalidates the key in the cache of the
// instance that revoked it at once; other instances keep answering from
// their cache until the entry is CacheTTL old, so a revoked key may be
// accepted there for up to CacheTTL (the same holds for the keys of a
// deleted account).
//
// # Last use without a write per validation
//
// lastUsedAt is not written by Validate: each instance keeps the latest use
// of every validated key in memory and one UPDATE every LastUsedInterval
// (1 minute by default) writes them all, so a key validated any number of
// times costs at most one write per interval and instance, and the stored
// value never goes backwards. Close writes what is pending. A crash loses
// at most the uses of the last interval: lastUsedAt may then be up to a
// minute older than the truth. List adds the uses this instance holds in
// memory.
package apikey
