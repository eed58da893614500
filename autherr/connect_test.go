package autherr

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests pin the driver-neutral readings of pgx's error values (see
// pgerrors.go) against the real values: if pgx renamed a PgError field,
// moved ConnectError or changed ErrConnClosed, a test here fails.

// fakePostgres listens on 127.0.0.1 and answers the SSLRequest of every
// connection with answer: 'N' refuses TLS; 'S' accepts it and then
// presents a self-signed certificate no client trusts. It returns the
// address; the listener is closed (and its goroutines waited for) when the
// test ends.
func fakePostgres(tb testing.TB, answer byte) string {
	tb.Helper()
	var cert tls.Certificate
	if answer == 'S' {
		cert = selfSignedCert(tb)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("close fake server: %v", err)
		}
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return // the listener was closed by Cleanup
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close() // the client already failed; nothing to report
				if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
					tb.Errorf("fake server: set deadline: %v", err)
					return
				}
				var req [2]int32
				if err := binary.Read(c, binary.BigEndian, &req); err != nil {
					tb.Errorf("fake server: read SSLRequest: %v", err)
					return
				}
				if req != [2]int32{8, 80877103} {
					tb.Errorf("fake server: got %v, want an SSLRequest", req)
					return
				}
				if _, err := c.Write([]byte{answer}); err != nil {
					tb.Errorf("fake server: answer SSLRequest: %v", err)
					return
				}
				if answer == 'S' {
					// The client refuses the certificate, so the server's
					// side of the handshake fails; what matters is the
					// client's error, which the test checks.
					_ = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
				}
			}()
		}
	}()
	return l.Addr().String()
}

func selfSignedCert(tb testing.TB) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsConnectErr connects to a fakePostgres answering answer with the given
// sslmode and returns the *pgconn.ConnectError pgx gives.
func tlsConnectErr(tb testing.TB, answer byte, sslmode string) error {
	tb.Helper()
	addr := fakePostgres(tb, answer)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, "postgres://nobody@"+addr+"/nothing?sslnegotiation=postgres&connect_timeout=5&sslmode="+sslmode)
	if err == nil {
		_ = conn.Close(ctx) // best effort: the test fails right below anyway
		tb.Fatalf("connect to fake server %s with sslmode=%s succeeded", addr, sslmode)
	}
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		tb.Fatalf("connect to fake server: got %T %v, want *pgconn.ConnectError", err, err)
	}
	return err
}

// refusedTLSConnectErr is a ConnectError whose cause is the plain error
// "server refused TLS connection" (sslmode=require, server answered 'N').
func refusedTLSConnectErr(tb testing.TB) error {
	tb.Helper()
	return tlsConnectErr(tb, 'N', "require")
}

// untrustedCertConnectErr is a ConnectError whose cause is a failed TLS
// handshake: the server's certificate is signed by an unknown authority.
func untrustedCertConnectErr(tb testing.TB) error {
	tb.Helper()
	return tlsConnectErr(tb, 'S', "verify-full")
}

// TestConnectErrorWithoutNetworkCause: a ConnectError is SERVICE_UNAVAILABLE
// even when nothing below it is a network, context or PostgreSQL error.
// Each case first proves that its cause alone classifies INTERNAL (so the
// row tests the recognition of ConnectError itself, not of its cause); if
// isPgxConnectError stopped matching pgx's type, the SERVICE_UNAVAILABLE
// assertions fail.
func TestConnectErrorWithoutNetworkCause(t *testing.T) {
	if testing.Short() {
		t.Skip("dials a local fake server; skipped with -short")
	}
	cases := []struct {
		name  string
		err   error
		cause func(t *testing.T, err error)
	}{
		{"tls_refused", refusedTLSConnectErr(t), func(t *testing.T, err error) {
			assert.Contains(t, err.Error(), "server refused TLS connection")
		}},
		{"untrusted_certificate", untrustedCertConnectErr(t), func(t *testing.T, err error) {
			var ua x509.UnknownAuthorityError
			assert.ErrorAs(t, err, &ua, "want an x509 unknown-authority error, got %v", err)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cause(t, tc.err)
			var ce *pgconn.ConnectError
			require.ErrorAs(t, tc.err, &ce)
			require.Equal(t, Internal, CodeOf(ce.Unwrap()),
				"the cause alone must classify INTERNAL, or this case does not test ConnectError: %v", ce.Unwrap())

			assert.Equal(t, ServiceUnavailable, CodeOf(tc.err))
			assert.Equal(t, ServiceUnavailable, CodeOf(fmt.Errorf("login: find user: %w", tc.err)))
			mislabeled := Wrap(InvalidCredentials, tc.err, "invalid email or password")
			assert.Equal(t, ServiceUnavailable, CodeOf(mislabeled))
			assert.False(t, CountsTowardLockout(mislabeled))
		})
	}
}

// TestX509ErrorOutsideConnectIsNotInfrastructure: TLS and x509 errors are
// infrastructure only inside a ConnectError. A passkey attestation whose
// certificate does not verify is the client's fault; if x509 errors were
// infrastructure everywhere, the guard in Classify would answer 503 here.
func TestX509ErrorOutsideConnectIsNotInfrastructure(t *testing.T) {
	err := Wrap(PasskeyVerificationFailed, fmt.Errorf("attestation: %w", x509.UnknownAuthorityError{}), "")
	assert.Equal(t, PasskeyVerificationFailed, CodeOf(err))
	assert.Equal(t, Internal, CodeOf(x509.UnknownAuthorityError{}))
}

func TestIsPgxConnectError(t *testing.T) {
	assert.True(t, isPgxConnectError(&pgconn.ConnectError{}), "pgx v5's *pgconn.ConnectError")
	assert.False(t, isPgxConnectError(localConnectError{}), "a type of the same name elsewhere")
	assert.False(t, isPgxConnectError(&localConnectError{}), "a pointer type of the same name elsewhere")
	assert.False(t, isPgxConnectError(&pgconn.PgError{}), "another pgconn type")
	assert.False(t, isPgxConnectError(errors.New("ConnectError")))
}

func TestIsPgconnPath(t *testing.T) {
	for path, want := range map[string]bool{
		"github.com/jackc/pgx/v5/pgconn":          true,
		"github.com/jackc/pgx/v6/pgconn":          true,
		"github.com/jackc/pgx/v10/pgconn":         true,
		"github.com/jackc/pgx/v4/pgconn":          false,
		"github.com/jackc/pgx/v05/pgconn":         false,
		"github.com/jackc/pgx/vx/pgconn":          false,
		"github.com/jackc/pgx/v/pgconn":           false,
		"github.com/jackc/pgx/v5/pgconn/internal": false,
		"github.com/jackc/pgx/v5/x/pgconn":        false,
		"github.com/jackc/pgconn":                 false,
		"example.com/pgconn":                      false,
	} {
		assert.Equalf(t, want, isPgconnPath(path), "isPgconnPath(%q)", path)
	}
}

type localConnectError struct{}

func (localConnectError) Error() string { return "ConnectError" }

// TestConnClosedSentinel: pgconn.ErrConnClosed is recognised by its text.
// If pgx changed the text (or made it another type), the first assertion
// fails and the text in pgerrors.go must follow.
func TestConnClosedSentinel(t *testing.T) {
	assert.True(t, isConnClosed(pgconn.ErrConnClosed), "pgconn.ErrConnClosed = %q", pgconn.ErrConnClosed.Error())
	assert.True(t, isConnClosed(errors.New("conn closed")))
	assert.False(t, isConnClosed(errors.New("conn closed early")))
	assert.False(t, isConnClosed(fmt.Errorf("x: %w", pgconn.ErrConnClosed)), "a node, not its tree")
	assert.False(t, isConnClosed(textErr("conn closed")), "another type with the same text")
	assert.Equal(t, ServiceUnavailable, CodeOf(fmt.Errorf("x: %w", pgconn.ErrConnClosed)))
}

type textErr string

func (e textErr) Error() string { return string(e) }

// TestPgErrorField reads every field LogValue and Classify need from a real
// PgError; if pgx renamed one, its row fails.
func TestPgErrorField(t *testing.T) {
	pg := &pgconn.PgError{
		Severity: "FATAL", SchemaName: "auth", TableName: "users",
		ColumnName: "email", ConstraintName: "users_email_key",
	}
	for field, want := range map[string]string{
		"Severity": "FATAL", "SchemaName": "auth", "TableName": "users",
		"ColumnName": "email", "ConstraintName": "users_email_key",
	} {
		assert.Equalf(t, want, pgErrorField(pg, field), "field %s", field)
	}
	assert.Empty(t, pgErrorField(pg, "Position"), "not a string field")
	assert.Empty(t, pgErrorField(pg, "NoSuchField"))
	assert.Empty(t, pgErrorField((*pgconn.PgError)(nil), "TableName"))
	assert.Empty(t, pgErrorField(textErr("x"), "TableName"), "not a struct")
	assert.Empty(t, pgErrorField(&embedsNil{TableName: "t"}, "ConstraintName"), "through a nil embedded pointer")
	assert.Equal(t, "c", pgErrorField(&embedsNil{inner: &inner{ConstraintName: "c"}}, "ConstraintName"), "promoted through an embedded pointer")
	assert.Equal(t, "t", pgErrorField(embedsNil{TableName: "t"}, "TableName"), "a struct value")
	assert.Empty(t, pgErrorField(&unexportedField{tableName: "t"}, "tableName"), "unexported")
}

type inner struct{ ConstraintName string }

type embedsNil struct {
	*inner
	TableName string
}

type unexportedField struct{ tableName string }

// otherDriverError is a PostgreSQL error from some other driver with the
// same field names: Classify and LogValue treat it as they treat pgx's.
type otherDriverError struct {
	Code           string
	Severity       string
	TableName      string
	ConstraintName string
}

func (e *otherDriverError) Error() string    { return "pq: " + e.Code }
func (e *otherDriverError) SQLState() string { return e.Code }

func TestOtherDriverSQLState(t *testing.T) {
	assert.Equal(t, EmailAlreadyRegistered, CodeOf(&otherDriverError{Code: "23505", ConstraintName: "users_email_key"}))
	assert.Equal(t, Conflict, CodeOf(&otherDriverError{Code: "23505", ConstraintName: "guilds_pkey"}))
	assert.Equal(t, ServiceUnavailable, CodeOf(fmt.Errorf("find user: %w", &otherDriverError{Code: "42703"})))
	assert.True(t, IsRetryable(&otherDriverError{Code: "40001"}))

	v := Wrap(Internal, &otherDriverError{Code: "22P02", Severity: "ERROR", TableName: "users"}, "").LogValue()
	got := map[string]string{}
	for _, a := range v.Group() {
		got[a.Key] = a.Value.String()
	}
	assert.Equal(t, "22P02", got["sqlstate"])
	assert.Equal(t, "ERROR", got["severity"])
	assert.Equal(t, "users", got["table"])
	assert.NotContains(t, got, "constraint", "empty fields are left out")
}
