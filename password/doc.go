// Package password hashes and checks passwords: argon2id in PHC string
// form with a bounded number of hashes running at once (memory stays flat
// under a sign-in flood), the rehash policy, and the NIST SP 800-63B-4
// policy for new passwords with the embedded list of 30,000 common ones.
//
// # Typical flow
//
//	h, _ := password.NewHasher(password.HasherConfig{}) // m=19 MiB, t=2, p=1
//	var policy password.Policy                          // 8..256 code points
//	if err := policy.Check(newPassword, email); err != nil { … } // WEAK_PASSWORD
//	phc, _ := h.Hash(ctx, newPassword)                  // store phc
//	ok, rehash, err := h.Verify(ctx, attempt, phc)      // at sign-in
//	// no account? h.DummyVerify(ctx, attempt): the same work, the same time
//
// # Decisions
//
// Passwords are used exactly as received (no trimming, no normalisation).
// A stored hash that cannot be read is INTERNAL, never "wrong password".
// At most one computation per core runs at once, each in working memory
// its slot keeps (argon2id memory is reused, not allocated per call), and
// at most HasherConfig.MaxQueue calls wait for a slot: a call beyond that,
// or one that waits longer than MaxWait, answers SERVICE_UNAVAILABLE with
// Retry-After — never a lockout-counting failure — so a flood is shed
// instead of queued without bound, and memory stays flat. Unknown
// addresses (DummyVerify) take the same path and are shed alike.
package password
