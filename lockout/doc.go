// Package lockout is mana-auth's login gate, its security event log and its
// rate limiters.
//
// # Login gate
//
// Every credential check (password login, passkey login, the password
// re-checks of change-password, change-email and account deletion) passes
// the same gate, keyed by the canonical (trimmed, lower-cased) email whether
// or not an account exists, so an unknown address locks exactly like a real
// one and the lock reveals nothing:
//
//	t, err := gate.Begin(ctx, lockout.Attempt{Email: email, Method: lockout.Password, IP: ip, UserAgent: ua})
//	if err != nil {
//		return err // 429 ACCOUNT_LOCKED (also for the right password) or 503
//	}
//	user, verr := verifyPassword(ctx, email, password) // INVALID_CREDENTIALS on a mismatch
//	if err := t.Finish(ctx, user.ID, verr); err != nil {
//		return err // could not record: 503
//	}
//	return verr
//
// Policy (DefaultPolicy): 5 credential failures within 15 minutes (a
// sliding window) lock the email for 30 minutes. Begin counts the attempt
// before the check and refuses every attempt once the count reaches the
// maximum, in one statement, so a burst of parallel wrong passwords on any
// number of instances verifies at most MaxFailures passwords per window.
// Only INVALID_CREDENTIALS counts (autherr.CountsTowardLockout): a database
// or hashing failure during the check takes the admission back. Failures
// while locked do not extend the lock. A success resets the count, so the
// window restarts after every successful login. Clear, called when a
// password reset completes, lifts the lock: an attacker who knows only an
// address locks its owner out for at most one lock period. Every attempt,
// refused ones included, is a row of auth.login_attempts; the failure that
// completes a lock records ACCOUNT_LOCKED in the same transaction.
// A check whose credential failed but must not count — a passkey assertion
// that did not verify — ends with Ticket.Reject: the attempt row and the
// failure event, the admission taken back.
//
// The gate fails closed: when PostgreSQL cannot be reached, Begin returns an
// error that classifies as SERVICE_UNAVAILABLE and records nothing — never
// "not locked".
//
// # Security events
//
// Events writes auth.security_events. Every optional value (user id, IP,
// user agent, metadata) is bound as NULL when absent. Log never breaks the
// request that caused the event: a failure is logged at warn with its cause
// and counted in mana_auth_security_event_failures_total. Insert writes an
// event inside the caller's transaction, where the event belongs to a state
// change.
//
// # Addresses and erasure
//
// auth.user_emails is the history of the addresses every account held,
// kept by a trigger on auth.users whatever writes the address. Service
// implements gdpr.AddressBook and gdpr.Exporter with it: an account's
// login attempts are those made on an address while it held it and those
// made on one of its addresses while no account held it; erasure deletes
// them and the lockout counters of its addresses and anonymises its
// security events (type and time stay), through a function that runs as
// the tables' owner — the runtime role itself can neither delete an
// attempt nor change an event.
//
// # Rate limiting
//
// A Limiter answers, per key, whether one more event is allowed now and
// otherwise when to retry; LimitError turns a refusal into 429 RATE_LIMITED
// with Retry-After. MemoryLimiter keeps the state of one instance in
// bounded memory (idle keys are dropped; 1,000,000 distinct keys flooding a
// limiter of MaxKeys 100,000 hold about 3 MiB); RedisLimiter shares it
// between instances through one Lua script on the Redis server's clock, and
// answers SERVICE_UNAVAILABLE — never "allowed" — when Redis cannot be
// reached. Both implement GCRA: Limit events per Period for a key that was
// idle, then one every Period/Limit. Both are Peekers too: Peek tells what
// Allow would answer without consuming, which makes a cooldown out of a
// limiter of Rate{1, cooldown} (engaged by Allow, checked by Peek). The
// client IP a per-IP key is built
// from comes from web.ClientIP, which believes X-Forwarded-For only from
// configured trusted proxies.
package lockout
