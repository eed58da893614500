// Package autherr is the error taxonomy of mana-auth: the wire codes of the
// HTTP contract, the classification of any error into one of them, and the
// JSON error envelope.
//
// Its one rule: nothing fails silently, and infrastructure trouble is never
// blamed on the user. A database that lost a column, a refused connection
// or a closed pool answers 503 SERVICE_UNAVAILABLE and is logged at error
// level with its SQLSTATE; it never becomes 401 INVALID_CREDENTIALS and
// never counts toward the lockout.
//
// # Typical flow
//
// Services return *Error for outcomes the client caused and plain wrapped
// errors for everything else:
//
//	u, err := s.store.UserByEmail(ctx, email)
//	switch {
//	case errors.Is(err, ErrNoUser):
//		return autherr.New(autherr.InvalidCredentials, "invalid email or password")
//	case err != nil:
//		return fmt.Errorf("login: find user: %w", err) // a PgError, a dial error, …
//	}
//
// The lockout asks whether a failure counts; only INVALID_CREDENTIALS does:
//
//	if autherr.CountsTowardLockout(err) {
//		lock.RecordFailure(ctx, email)
//	}
//
// Handlers return the error and one adapter (package web) answers it:
//
//	errs := autherr.Writer{Logger: logger, Observe: metrics.observe}
//	errs.Write(w, r, err)
//
// which sends the status of the code and
//
//	{"error":{"code":"SERVICE_UNAVAILABLE","message":"service temporarily unavailable","requestId":"…"}}
//
// while the log record (WARN for 4xx, ERROR for 5xx) carries the cause,
// SQLSTATE, table, column and constraint, method, path and request id.
//
// # Classification
//
// Classify maps an error tree to an *Error: our own *Error wins (unless a
// client-fault code wraps an infrastructure failure, which answers
// SERVICE_UNAVAILABLE), then infrastructure failures, then PostgreSQL
// errors by SQLSTATE (every PostgreSQL 15 class has a deliberate entry),
// then request-body errors; anything else is INTERNAL. Branch with the
// predicates CountsTowardLockout, IsUnavailable, IsRetryable and CodeOf,
// never on error text.
//
// # What reaches the client
//
// The code, Message (client-safe by contract), the request id,
// remainingSeconds and Details. INTERNAL and SERVICE_UNAVAILABLE show only a
// generic message: no SQL, no table or column, no SQLSTATE, no cause. No
// field of an Error — Message, the cause's text or Details — may hold a
// secret (password, token, key bytes); Details is sent to the client and
// only its keys are logged.
package autherr
