package autherr

import (
	"errors"
	"reflect"
	"strings"
)

// PostgreSQL errors are recognised without linking a database driver:
// autherr sits below every package of ours, including those that must stay
// free of drivers (grant, whose dependencies a test lists), so it imports
// nothing from pgx. What it needs of pgx's error values it reads through
// their behaviour and, where pgx offers no method, through reflection on
// the exported fields and type names pgx documents. Tests that build the
// real pgx values (and get them from a real server) pin every one of these
// readings; a pgx release that renamed a field or type fails them.

// sqlStater is a server error that carries a SQLSTATE: pgx's
// *pgconn.PgError (and lib/pq's *pq.Error) implement it.
type sqlStater interface {
	SQLState() string
}

// findSQLState returns the first node in err's tree that carries a
// SQLSTATE, nil if none does.
func findSQLState(err error) sqlStater {
	var found sqlStater
	walk(err, func(node error) bool {
		if s, ok := node.(sqlStater); ok {
			found = s
			return true
		}
		return false
	})
	return found
}

// pgErrorField returns the exported string field name of a PostgreSQL
// error value (a struct or a pointer to one), "" when it has no such field.
//
// pgx's *pgconn.PgError exposes the server's error fields (ConstraintName,
// TableName, ColumnName, SchemaName, Severity) only as struct fields, with
// no method a driver-neutral interface could name, so they are read by
// name. The lookup is a scan of the struct's fields on an error path, cheap
// enough not to need a cache (which would be package-level mutable state).
// A field reached through a nil embedded pointer reads as "".
func pgErrorField(e any, name string) string {
	v := reflect.ValueOf(e)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	sf, ok := v.Type().FieldByName(name)
	if !ok || !sf.IsExported() || sf.Type.Kind() != reflect.String {
		return ""
	}
	f, err := v.FieldByIndexErr(sf.Index)
	if err != nil {
		return ""
	}
	return f.String()
}

// isPgxConnectError reports whether node is pgx's *pgconn.ConnectError
// (of pgx v5 or a later major version), recognised by its package path and
// type name.
//
// A ConnectError means the connection to the database could not be made,
// whatever its cause, so it is always SERVICE_UNAVAILABLE. Its causes are
// mostly infrastructure errors the walk recognises on their own (a dial
// error, a PgError with SQLSTATE 28xxx or 3D000, an unexpected EOF), but
// not all: "server refused TLS connection" and the target_session_attrs
// checks are plain errors.New values, an x509 error is a failed TLS
// handshake, an AfterConnect hook returns anything. Classifying TLS and
// x509 errors as infrastructure everywhere would be wrong (a WebAuthn
// attestation whose certificate does not verify is the client's fault, and
// the guard in Classify would turn it into a 503), and ConnectError has no
// method beyond Error and Unwrap to test for, so its type is matched by
// name.
func isPgxConnectError(node error) bool {
	t := reflect.TypeOf(node)
	if t.Kind() != reflect.Pointer {
		return false
	}
	t = t.Elem()
	return t.Name() == "ConnectError" && isPgconnPath(t.PkgPath())
}

// isPgconnPath reports whether path is github.com/jackc/pgx/vN/pgconn with
// N >= 5 (pgx v4's pgconn was a module of its own).
func isPgconnPath(path string) bool {
	major, ok := strings.CutPrefix(path, "github.com/jackc/pgx/v")
	if !ok {
		return false
	}
	major, ok = strings.CutSuffix(major, "/pgconn")
	if !ok || major == "" || major[0] == '0' {
		return false
	}
	for _, c := range major {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(major) > 1 || major >= "5"
}

// pgxConnClosed is the text of pgx's pgconn.ErrConnClosed, the sentinel
// (an errors.New value) for an operation on a connection that is closed.
const pgxConnClosed = "conn closed"

// isConnClosed reports whether node is an errors.New (or fmt.Errorf
// without %w) value whose text is pgxConnClosed: pgconn.ErrConnClosed, the
// one form in which pgx reports it. Another error that says exactly "conn
// closed" is also a closed connection to some backend, which makes
// SERVICE_UNAVAILABLE the right answer for it too.
func isConnClosed(node error) bool {
	return reflect.TypeOf(node) == reflect.TypeOf(errors.New("")) && node.Error() == pgxConnClosed
}
