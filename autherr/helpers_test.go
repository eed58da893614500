package autherr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// The helpers build real error values (the shapes pgx, net and
// encoding/json produce), so the classifier is tested against what it will
// meet in production, not against look-alikes.

// pgErr is a server error as pgconn decodes it.
func pgErr(code, msg string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: msg}
}

// incidentErr is the exact shape of the incident: a schema-drift error
// from the user lookup, wrapped twice on the way up.
func incidentErr() error {
	return fmt.Errorf("login: %w", fmt.Errorf("find user: %w", &pgconn.PgError{
		Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "42703",
		Message:    `column "email" does not exist`,
		Position:   8,
		Routine:    "errorMissingColumn",
		SchemaName: "auth", TableName: "users", ColumnName: "email",
	}))
}

// connectErr returns a real *pgconn.ConnectError: a dial to a port that was
// just closed (connection refused). pgconn offers no way to build one.
func connectErr(tb testing.TB) error {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatalf("close listener: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, "postgres://nobody@"+addr+"/nothing?sslmode=disable&connect_timeout=5")
	if err == nil {
		_ = conn.Close(ctx) // best effort: the test fails right below anyway
		tb.Fatalf("connect to closed port %s succeeded", addr)
	}
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		tb.Fatalf("connect to closed port: got %T %v, want *pgconn.ConnectError", err, err)
	}
	return err
}

// jsonSyntaxErr and jsonTypeErr are what encoding/json returns for a
// truncated body and for a number where a string belongs.
func jsonSyntaxErr() error {
	var v map[string]any
	return json.Unmarshal([]byte(`{"email":`), &v)
}

func jsonTypeErr() error {
	var v struct {
		Email string `json:"email"`
	}
	return json.Unmarshal([]byte(`{"email":42}`), &v)
}

// timeoutErr is a net.Error that timed out (a read deadline on a socket).
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "read tcp 127.0.0.1:5432: i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// uncomparableErr is a value error type that == cannot compare.
type uncomparableErr struct{ parts []string }

func (e uncomparableErr) Error() string { return "uncomparable" }
