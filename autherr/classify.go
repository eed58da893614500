package autherr

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"syscall"

	"github.com/jackc/puddle/v2"
)

// Classify turns any error into an *Error; it returns nil for nil.
//
// In order:
//
//  1. An *Error anywhere in err's tree is returned as is — unless its status
//     is below 500 while the tree also holds an infrastructure failure (a
//     database, network, pool or context error, or an *Error with
//     SERVICE_UNAVAILABLE). Then the answer is SERVICE_UNAVAILABLE: a wrapper
//     that labels a database outage INVALID_CREDENTIALS (or any other client
//     fault) cannot blame the user or bump the lockout counter.
//  2. Infrastructure failures anywhere in the tree: SERVICE_UNAVAILABLE.
//     That covers pgx's *pgconn.ConnectError (whatever its cause: refused
//     dial, TLS refusal or handshake failure, login refused), pgconn
//     timeouts, a closed pgxpool (puddle.ErrClosedPool), a closed
//     connection (pgconn.ErrConnClosed), any net.Error (dial, DNS,
//     *net.OpError, timeouts),
//     ECONNREFUSED/ECONNRESET/EPIPE and their kin, io.ErrUnexpectedEOF,
//     context.DeadlineExceeded and context.Canceled (the client went away
//     or the server is shutting down; the answer is likely never read, but
//     the code must not say the client was wrong), and PostgreSQL errors
//     whose SQLSTATE means infrastructure (see below).
//  3. Other PostgreSQL errors by SQLSTATE: 23505 is EMAIL_ALREADY_REGISTERED
//     when the constraint name contains "email", else CONFLICT; the rest
//     by the exact-code table, then the class table (every PostgreSQL 15
//     class has an entry); an unknown class is INTERNAL.
//  4. *http.MaxBytesError: PAYLOAD_TOO_LARGE; *json.SyntaxError and
//     *json.UnmarshalTypeError: BAD_REQUEST. Decoding of data that did not
//     come from the client must be wrapped as INTERNAL by its caller.
//  5. Anything else: INTERNAL (a bug).
//
// A PostgreSQL error is any error with a SQLState() string method, such as
// pgx's *pgconn.PgError; the constraint name is read from its exported
// ConstraintName field. autherr imports no database driver: pgx's error
// values are recognised by their methods, exported fields and type names.
//
// The returned Message of a classified error is the code's generic message;
// the cause is kept in Err for the logs, never for the client.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	if e := findError(err); e != nil {
		if e.Status() < http.StatusInternalServerError && unavailable(err) {
			return &Error{Code: ServiceUnavailable, Message: ServiceUnavailable.defaultMessage(), Err: err}
		}
		return e
	}
	code := classifyCause(err)
	return &Error{Code: code, Message: code.defaultMessage(), Err: err}
}

// CountsTowardLockout reports whether err is a credential failure that the
// lockout counter must count: true only when Classify gives
// INVALID_CREDENTIALS (a wrong password) or MFA_INVALID_CODE (a wrong or
// replayed second-factor code). Infrastructure errors never count, even
// when mislabeled (see Classify).
func CountsTowardLockout(err error) bool {
	e := Classify(err)
	return e != nil && (e.Code == InvalidCredentials || e.Code == MFAInvalidCode)
}

// IsUnavailable reports whether err classifies as SERVICE_UNAVAILABLE.
func IsUnavailable(err error) bool {
	e := Classify(err)
	return e != nil && e.Code == ServiceUnavailable
}

// IsRetryable reports whether err classifies as SERVICE_UNAVAILABLE because
// of a serialization failure (40001) or deadlock (40P01): the same request
// may well succeed at once. Write answers such errors with Retry-After: 1.
func IsRetryable(err error) bool {
	e := Classify(err)
	if e == nil || e.Code != ServiceUnavailable {
		return false
	}
	return walk(err, func(node error) bool {
		s, ok := node.(sqlStater)
		return ok && retryableSQLStates[s.SQLState()]
	})
}

// CodeOf returns the code Classify gives err, "" for nil.
func CodeOf(err error) Code {
	if e := Classify(err); e != nil {
		return e.Code
	}
	return ""
}

// classifyCause classifies an error tree that holds no *Error.
func classifyCause(err error) Code {
	if unavailable(err) {
		return ServiceUnavailable
	}
	if s := findSQLState(err); s != nil {
		return sqlstateCode(s)
	}
	code := Internal
	walk(err, func(node error) bool {
		switch node.(type) {
		case *http.MaxBytesError:
			code = PayloadTooLarge
			return true
		case *json.SyntaxError, *json.UnmarshalTypeError:
			code = BadRequest
			return true
		}
		return false
	})
	return code
}

// findError returns the first non-nil *Error in err's tree.
func findError(err error) *Error {
	var found *Error
	walk(err, func(node error) bool {
		if e, ok := node.(*Error); ok && e != nil {
			found = e
			return true
		}
		return false
	})
	return found
}

// unavailable reports whether err's tree holds an infrastructure failure.
// (pgconn's timeout error always wraps context.Canceled,
// context.DeadlineExceeded or a net.Error that timed out, which the walk
// finds below it.)
func unavailable(err error) bool {
	return walk(err, unavailableNode)
}

// unavailableErrnos are socket errors that mean the peer (the database,
// a mail or rate-limit server) is unreachable or went away.
var unavailableErrnos = []syscall.Errno{
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	syscall.ECONNABORTED,
	syscall.EPIPE,
	syscall.ETIMEDOUT,
	syscall.EHOSTUNREACH,
	syscall.ENETUNREACH,
	syscall.ENETDOWN,
}

// unavailableNode looks at one node of an error tree, not its children.
func unavailableNode(node error) bool {
	if s, ok := node.(sqlStater); ok && sqlstateCode(s) == ServiceUnavailable {
		return true
	}
	if isPgxConnectError(node) || isConnClosed(node) {
		return true
	}
	switch n := node.(type) {
	case *Error:
		return n.Code == ServiceUnavailable
	case syscall.Errno:
		for _, e := range unavailableErrnos {
			if n == e {
				return true
			}
		}
		return false
	}
	// Sentinels compare by identity; == on an uncomparable dynamic type
	// would panic, so check first (as errors.Is does).
	if reflect.TypeOf(node).Comparable() {
		switch node {
		case context.Canceled, context.DeadlineExceeded, io.ErrUnexpectedEOF,
			puddle.ErrClosedPool:
			return true
		}
	}
	if _, ok := node.(net.Error); ok {
		return true
	}
	if t, ok := node.(interface{ Timeout() bool }); ok && t.Timeout() {
		return true
	}
	return false
}

// walk visits err's tree depth first (the order of errors.As) and stops at
// the first node for which visit returns true, reporting whether it did.
// Typed nil nodes are skipped with their subtree (their methods could
// panic), and a budget bounds pathological or cyclic trees.
func walk(err error, visit func(error) bool) bool {
	budget := 10000
	var rec func(error) bool
	rec = func(e error) bool {
		if e == nil || isNilPointer(e) {
			return false
		}
		budget--
		if budget < 0 {
			return false
		}
		if visit(e) {
			return true
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			return rec(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, child := range u.Unwrap() {
				if rec(child) {
					return true
				}
			}
		}
		return false
	}
	return rec(err)
}

func isNilPointer(err error) bool {
	v := reflect.ValueOf(err)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// sqlstateCode maps a PostgreSQL error to a code: 23505 by constraint name
// (the ConstraintName field of pgx's PgError), then the exact-code table,
// then the class table, else INTERNAL.
func sqlstateCode(pg sqlStater) Code {
	code := pg.SQLState()
	if code == "23505" {
		if strings.Contains(strings.ToLower(pgErrorField(pg, "ConstraintName")), "email") {
			return EmailAlreadyRegistered
		}
		return Conflict
	}
	if c, ok := sqlstateCodes[code]; ok {
		return c
	}
	if len(code) == 5 {
		if c, ok := sqlstateClasses[code[:2]]; ok {
			return c
		}
	}
	return Internal
}

// retryableSQLStates may succeed when the transaction is simply run again.
var retryableSQLStates = map[string]bool{
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
}

// sqlstateCodes are the single SQLSTATEs that answer differently from their
// class. (23505 is decided by sqlstateCode from the constraint name.)
var sqlstateCodes = map[string]Code{
	// Class 23: integrity constraints the database enforced for us.
	"23001": Conflict, // restrict_violation: the row is still referenced
	"23503": Conflict, // foreign_key_violation: a referenced row went away or is still referenced (a concurrent change)
	"23P01": Conflict, // exclusion_violation: overlaps an existing row

	// Class 25: the connection, not the statement, is the problem.
	"25006": ServiceUnavailable, // read_only_sql_transaction: writes reach a standby (failover)
	"25P03": ServiceUnavailable, // idle_in_transaction_session_timeout: the server ended the session

	// Class 42: schema drift and missing grants are deployment faults, not
	// bugs in the request and never the user's fault (the incident: a
	// missing column turned into 401 INVALID_CREDENTIALS).
	"42501": ServiceUnavailable, // insufficient_privilege: the runtime role lacks a grant (or an RLS policy refused)
	"42703": ServiceUnavailable, // undefined_column
	"42883": ServiceUnavailable, // undefined_function
	"42P01": ServiceUnavailable, // undefined_table
	"42704": ServiceUnavailable, // undefined_object: a type, role or extension the migrations create is missing

	// Class 55: contention and busy objects are transient.
	"55006": ServiceUnavailable, // object_in_use
	"55P03": ServiceUnavailable, // lock_not_available: lock_timeout or NOWAIT
}

// sqlstateClasses answers for every SQLSTATE class PostgreSQL 15 defines
// (Appendix A; the list in testdata/sqlstate_classes.txt is checked against
// this table). INTERNAL means our SQL or our data handling is wrong;
// SERVICE_UNAVAILABLE means the database or its deployment is.
var sqlstateClasses = map[string]Code{
	"00": Internal,           // successful completion: never an error; reaching here is a driver or caller bug
	"01": Internal,           // warning: not an error; turning one into an error is a bug
	"02": Internal,           // no data: a caller must handle "no rows" itself
	"03": Internal,           // SQL statement not yet complete
	"08": ServiceUnavailable, // connection exception: the database is unreachable or dropped us
	"09": Internal,           // triggered action exception
	"0A": Internal,           // feature not supported: our SQL uses something the server lacks
	"0B": Internal,           // invalid transaction initiation
	"0F": Internal,           // locator exception
	"0L": Internal,           // invalid grantor: only migrations grant
	"0P": ServiceUnavailable, // invalid role specification: the runtime role is missing (deployment)
	"0Z": Internal,           // diagnostics exception
	"20": Internal,           // case not found (PL/pgSQL CASE)
	"21": Internal,           // cardinality violation: a subquery returned more rows than our SQL expects
	"22": Internal,           // data exception: input reached SQL unvalidated (too long, bad cast, bad uuid text)
	"23": Internal,           // integrity constraint violation: NOT NULL/CHECK refused what the service should have checked (23505/23503/23001/23P01 above)
	"24": Internal,           // invalid cursor state
	"25": Internal,           // invalid transaction state: our transaction handling is wrong (25006/25P03 above)
	"26": Internal,           // invalid SQL statement name: unknown prepared statement
	"27": Internal,           // triggered data change violation
	"28": ServiceUnavailable, // invalid authorization specification: the database refused our login (credentials, pg_hba)
	"2B": Internal,           // dependent privilege descriptors still exist
	"2D": Internal,           // invalid transaction termination
	"2F": Internal,           // SQL routine exception
	"34": Internal,           // invalid cursor name
	"38": Internal,           // external routine exception
	"39": Internal,           // external routine invocation exception
	"3B": Internal,           // savepoint exception
	"3D": ServiceUnavailable, // invalid catalog name: the database does not exist (deployment)
	"3F": ServiceUnavailable, // invalid schema name: a schema is missing (migrations not applied: schema drift)
	"40": ServiceUnavailable, // transaction rollback: serialization failure, deadlock (retryable), statement completion unknown
	"42": Internal,           // syntax error or access rule violation: our SQL is wrong (drift and grants above)
	"44": Internal,           // WITH CHECK OPTION violation
	"53": ServiceUnavailable, // insufficient resources: disk full, out of memory, too many connections
	"54": Internal,           // program limit exceeded: our statement is too large or complex, or unvalidated input too big for an index
	"55": Internal,           // object not in prerequisite state: e.g. currval before nextval (55006/55P03 above)
	"57": ServiceUnavailable, // operator intervention: query canceled, admin/crash shutdown, cannot connect now, database dropped
	"58": ServiceUnavailable, // system error: I/O error, missing or duplicate file on the server
	"72": ServiceUnavailable, // snapshot failure: snapshot too old (server setting, transient)
	"F0": ServiceUnavailable, // configuration file error: the server is misconfigured
	"HV": Internal,           // foreign data wrapper error: we use no FDW; one reaching us is a surprise to fix
	"P0": Internal,           // PL/pgSQL error: RAISE in our functions; deliberate ones must be mapped by their caller
	"XX": ServiceUnavailable, // internal error, data or index corrupted: the database is broken, an operator must act
}
