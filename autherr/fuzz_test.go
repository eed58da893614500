package autherr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// Operations of the chain builder; a fuzz input is a sequence of them and
// their arguments.
const (
	opLeaf     = iota // a plain errors.New
	opPgAny           // PgError: 5 code bytes, 1 constraint byte
	opPgInfra         // PgError from infraSQLStates: 1 index byte
	opConnect         // a real *pgconn.ConnectError
	opNetOp           // *net.OpError over ECONNREFUSED
	opTimeout         // a timeout: 1 byte chooses which
	opCanceled        // context.Canceled
	opJSON            // a real json error: 1 byte chooses which
	opMaxBytes        // *http.MaxBytesError
	opOwn             // *Error: 1 code byte, 1 byte "has a cause", then the cause
	opJoin            // errors.Join of two chains
	opWrap            // fmt.Errorf %w of one chain
	opSentinel        // an infrastructure sentinel: 1 byte chooses which
	opTypedNil        // a typed nil *Error or *PgError wrapped by fmt.Errorf
	opWrap2           // fmt.Errorf with two %w
	opTLSConn         // a real *pgconn.ConnectError: TLS refused or certificate untrusted, 1 byte chooses
	opCount
)

// infraSQLStates are SQLSTATEs that mean infrastructure, listed here
// independently of the tables under test.
var infraSQLStates = []string{"42703", "42P01", "42883", "42501", "08006", "08001", "08P01", "57P01", "57P03", "57014", "53300", "53100", "40001", "40P01", "28P01", "3D000", "3F000", "XX000", "58030"}

const sqlstateAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

type chainBuilder struct {
	data  []byte
	pos   int
	conn  error
	tls   [2]error // ConnectErrors without a network cause
	infra bool     // an infrastructure error is in the chain
	own   bool     // a non-nil *Error is in the chain
}

func (b *chainBuilder) next() byte {
	if b.pos >= len(b.data) {
		return 0
	}
	c := b.data[b.pos]
	b.pos++
	return c
}

func (b *chainBuilder) build(depth int) error {
	if depth > 12 {
		return errors.New("depth limit")
	}
	switch b.next() % opCount {
	case opPgAny:
		code := make([]byte, 5)
		for i := range code {
			code[i] = sqlstateAlphabet[int(b.next())%len(sqlstateAlphabet)]
		}
		constraint := ""
		if b.next()%2 == 0 {
			constraint = "users_email_key"
		}
		return &pgconn.PgError{Severity: "ERROR", Code: string(code), Message: `relation "auth.users" broke`, TableName: "users", ConstraintName: constraint}
	case opPgInfra:
		b.infra = true
		return pgErr(infraSQLStates[int(b.next())%len(infraSQLStates)], "infra")
	case opConnect:
		b.infra = true
		return b.conn
	case opNetOp:
		b.infra = true
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	case opTimeout:
		b.infra = true
		switch b.next() % 3 {
		case 0:
			return context.DeadlineExceeded
		case 1:
			return os.ErrDeadlineExceeded
		default:
			return timeoutErr{}
		}
	case opCanceled:
		b.infra = true
		return context.Canceled
	case opTLSConn:
		b.infra = true
		return b.tls[int(b.next())%len(b.tls)]
	case opJSON:
		if b.next()%2 == 0 {
			return jsonSyntaxErr()
		}
		return jsonTypeErr()
	case opMaxBytes:
		return &http.MaxBytesError{Limit: 64 << 10}
	case opOwn:
		all := Codes()
		c := b.next()
		code := Code(fmt.Sprintf("UNKNOWN_%d", c))
		if int(c) < len(all) {
			code = all[c]
		} else if int(c)%2 == 0 {
			code = all[int(c)%len(all)]
		}
		b.own = true
		e := &Error{Code: code, Message: "m"}
		if b.next()%2 == 0 {
			e.Err = b.build(depth + 1)
		}
		return e
	case opJoin:
		return errors.Join(b.build(depth+1), b.build(depth+1))
	case opWrap:
		return fmt.Errorf("wrap: %w", b.build(depth+1))
	case opSentinel:
		b.infra = true
		sentinels := []error{puddle.ErrClosedPool, pgconn.ErrConnClosed, io.ErrUnexpectedEOF, syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNREFUSED}
		return sentinels[int(b.next())%len(sentinels)]
	case opTypedNil:
		if b.next()%2 == 0 {
			return fmt.Errorf("nil: %w", (*Error)(nil))
		}
		return fmt.Errorf("nil: %w", (*pgconn.PgError)(nil))
	case opWrap2:
		return fmt.Errorf("two: %w and %w", b.build(depth+1), b.build(depth+1))
	default: // opLeaf
		return errors.New("leaf")
	}
}

// FuzzClassify builds arbitrary error trees and checks the invariants the
// whole design leans on: Classify never panics, never answers below 400,
// and an infrastructure error in the tree never yields INVALID_CREDENTIALS
// or a lockout count — with or without one of our *Error in the tree (the
// guard in Classify). Without our *Error, infrastructure always answers
// SERVICE_UNAVAILABLE. Write never panics and always sends a known code.
//
// If the guard were removed, inputs with opOwn(INVALID_CREDENTIALS) over an
// infrastructure cause fail; if an infrastructure type fell through to
// INTERNAL, the "want SERVICE_UNAVAILABLE" check fails.
func FuzzClassify(f *testing.F) {
	conn := connectErr(f)
	tlsConns := [2]error{refusedTLSConnectErr(f), untrustedCertConnectErr(f)}
	invalidIdx := byte(indexOf(Codes(), InvalidCredentials))
	seeds := [][]byte{
		{opWrap, opWrap, opPgInfra, 0},             // the incident: 42703 wrapped twice
		{opOwn, invalidIdx, 0, opPgInfra, 0},       // INVALID_CREDENTIALS over 42703
		{opJoin, opOwn, invalidIdx, 1, opConnect},  // INVALID_CREDENTIALS joined with a dial error
		{opOwn, invalidIdx, 0, opWrap, opCanceled}, // INVALID_CREDENTIALS over context.Canceled
		{opPgAny, '2', '3', '5', '0', '5', 0},      // 23505 on an email constraint
		{opPgAny, 'Z', 'Z', '0', '0', '0', 1},      // unknown class
		{opConnect},                                // refused dial
		{opTLSConn, 0}, {opTLSConn, 1},             // connect failures without a network cause
		{opOwn, invalidIdx, 0, opTLSConn, 0},           // INVALID_CREDENTIALS over a TLS refusal
		{opNetOp},                                      // *net.OpError
		{opTimeout, 0}, {opTimeout, 1}, {opTimeout, 2}, // timeouts
		{opSentinel, 0}, {opSentinel, 1}, {opSentinel, 2},
		{opJSON, 0}, {opJSON, 1}, {opMaxBytes},
		{opTypedNil, 0}, {opTypedNil, 1},
		{opWrap2, opJSON, 0, opPgInfra, 3}, // body error and an outage together
		{opOwn, 200, 1},                    // unknown code
		{opJoin, opLeaf, opLeaf},
		{},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &chainBuilder{data: data, conn: conn, tls: tlsConns}
		err := b.build(0)
		e := Classify(err)
		if err == nil {
			if e != nil {
				t.Fatalf("Classify(nil) = %v", e)
			}
			return
		}
		if e == nil {
			t.Fatalf("Classify(%v) = nil", err)
		}
		if e.Status() < 400 {
			t.Fatalf("Classify(%v): status %d < 400", err, e.Status())
		}
		if b.infra {
			if e.Code == InvalidCredentials || CountsTowardLockout(err) {
				t.Fatalf("Classify(%v) = INVALID_CREDENTIALS with an infrastructure error in the tree", err)
			}
			if !b.own && e.Code != ServiceUnavailable {
				t.Fatalf("Classify(%v) = %s, want SERVICE_UNAVAILABLE for an infrastructure error", err, e.Code)
			}
		}
		if !b.own && e.Code == InvalidCredentials {
			t.Fatalf("Classify(%v) = INVALID_CREDENTIALS without any *Error", err)
		}
		if IsRetryable(err) && e.Code != ServiceUnavailable {
			t.Fatalf("IsRetryable(%v) with code %s", err, e.Code)
		}

		rec := httptest.NewRecorder()
		discard().Write(rec, httptest.NewRequest(http.MethodPost, "/login", nil), err)
		if rec.Code < 400 {
			t.Fatalf("Write(%v): status %d", err, rec.Code)
		}
		var env struct {
			Error struct {
				Code    Code   `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if jErr := json.Unmarshal(rec.Body.Bytes(), &env); jErr != nil {
			t.Fatalf("Write(%v): body %q is not JSON: %v", err, rec.Body.String(), jErr)
		}
		if !env.Error.Code.known() {
			t.Fatalf("Write(%v): unknown wire code %q", err, env.Error.Code)
		}
		if env.Error.Code.Status() != rec.Code {
			t.Fatalf("Write(%v): code %s with status %d", err, env.Error.Code, rec.Code)
		}
		if (env.Error.Code == Internal || env.Error.Code == ServiceUnavailable) && env.Error.Message != env.Error.Code.defaultMessage() {
			t.Fatalf("Write(%v): 5xx message %q is not generic", err, env.Error.Message)
		}
	})
}

func indexOf(codes []Code, c Code) int {
	for i, x := range codes {
		if x == c {
			return i
		}
	}
	panic("code not found: " + string(c))
}
