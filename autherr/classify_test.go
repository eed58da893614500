package autherr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCodeStatus pins every code of api.md to its status. A code missing
// from the table answers 500 and fails its row here; a code added to the
// table without a row here fails the count check.
func TestCodeStatus(t *testing.T) {
	want := map[Code]int{
		BadRequest:                400,
		ValidationFailed:          400,
		WeakPassword:              400,
		InvalidCredentials:        401,
		MFAInvalidCode:            401,
		ReauthRequired:            401,
		Unauthorized:              401,
		TokenInvalid:              401,
		TokenExpired:              401,
		PasskeyVerificationFailed: 401,
		EmailNotVerified:          403,
		AccountDisabled:           403,
		Forbidden:                 403,
		NotFound:                  404,
		EmailAlreadyRegistered:    409,
		Conflict:                  409,
		PayloadTooLarge:           413,
		AccountLocked:             429,
		RateLimited:               429,
		SignupLimitReached:        429,
		Internal:                  500,
		ServiceUnavailable:        503,
		VaultNotFound:             404,
		ZKActive:                  409,
		ZKRotateForbidden:         409,
		RecoveryWrapMissing:       400,
		GrantNotConfigured:        503,
	}
	for code, status := range want {
		assert.Equalf(t, status, code.Status(), "%s.Status()", code)
		assert.Truef(t, code.known(), "%s is not in the code table", code)
		assert.NotEmptyf(t, code.defaultMessage(), "%s has no default message", code)
	}
	assert.Len(t, Codes(), len(want), "Codes() and the api.md list differ")
	for _, c := range Codes() {
		assert.Containsf(t, want, c, "code %s is in the table but not pinned by this test", c)
		assert.Regexpf(t, `^[A-Z][A-Z_]*[A-Z]$`, string(c), "code %s is not an UPPER_SNAKE wire string", c)
	}
	assert.Equal(t, 500, Code("NO_SUCH_CODE").Status(), "unknown code")
	assert.Equal(t, 500, Code("").Status(), "empty code")
}

type classifyCase struct {
	name      string
	err       error
	want      Code
	lockout   bool // CountsTowardLockout
	retryable bool // IsRetryable
	same      *Error
}

// TestClassify covers every branch of Classify. Each group's comment says
// which rows fail when that part of the fix is broken.
func TestClassify(t *testing.T) {
	own := New(NotFound, "no such guild")
	invalid := New(InvalidCredentials, "invalid email or password")
	badCode := New(MFAInvalidCode, "invalid or already used code")
	grant := New(GrantNotConfigured, "mission grants are not configured")
	unknownCode := &Error{Code: "NO_SUCH_CODE", Message: "x"}
	notInfra := Wrap(NotFound, pgErr("22P02", `invalid input syntax for type uuid: "abc"`), "no such guild")
	conn := connectErr(t)
	tlsRefused := refusedTLSConnectErr(t)
	untrustedCert := untrustedCertConnectErr(t)

	cases := []classifyCase{
		// Our own errors pass through untouched. If Classify rebuilt them,
		// the *_same rows fail (the pointer differs) and RemainingSeconds or
		// Details set by a service would be lost.
		{name: "own_error_as_is", err: own, want: NotFound, same: own},
		{name: "own_error_deep_in_chain", err: fmt.Errorf("guilds: %w", fmt.Errorf("get: %w", own)), want: NotFound, same: own},
		{name: "own_error_in_join", err: errors.Join(errors.New("unrelated"), own), want: NotFound, same: own},
		{name: "own_5xx_domain_code_as_is", err: fmt.Errorf("grant: %w", grant), want: GrantNotConfigured, same: grant},
		{name: "own_unknown_code_as_is", err: unknownCode, want: "NO_SUCH_CODE", same: unknownCode},
		{name: "own_4xx_over_non_infra_cause", err: notInfra, want: NotFound, same: notInfra},
		// The only code that counts toward lockout. If CountsTowardLockout
		// compared anything but the classified code, these rows or
		// TestCountsTowardLockoutOnlyCredentialFailures fail.
		{name: "invalid_credentials", err: invalid, want: InvalidCredentials, lockout: true, same: invalid},
		{name: "invalid_credentials_wrapped", err: fmt.Errorf("login: %w", invalid), want: InvalidCredentials, lockout: true, same: invalid},
		{name: "mfa_invalid_code", err: fmt.Errorf("mfa: %w", badCode), want: MFAInvalidCode, lockout: true, same: badCode},
		{name: "mislabeled_mfa_outage", err: Wrap(MFAInvalidCode, conn, ""), want: ServiceUnavailable},

		// The incident. If 42703 mapped to INVALID_CREDENTIALS (or anything
		// but SERVICE_UNAVAILABLE), incident_42703 fails and
		// CountsTowardLockout turns true: every login would bump the lockout.
		{name: "incident_42703", err: incidentErr(), want: ServiceUnavailable},
		// The incident's wrapper: a handler labels the database error as a
		// credential failure. Without the guard in Classify (4xx *Error over
		// an infrastructure cause answers 503) these rows return
		// INVALID_CREDENTIALS and count toward lockout.
		{name: "mislabeled_incident", err: Wrap(InvalidCredentials, incidentErr(), "invalid email or password"), want: ServiceUnavailable},
		{name: "mislabeled_dial_error", err: Wrap(InvalidCredentials, conn, ""), want: ServiceUnavailable},
		{name: "mislabeled_join_with_outage", err: errors.Join(invalid, conn), want: ServiceUnavailable},
		{name: "mislabeled_classified_outage", err: Wrap(InvalidCredentials, Classify(incidentErr()), ""), want: ServiceUnavailable},
		{name: "mislabeled_not_found_over_timeout", err: Wrap(NotFound, context.DeadlineExceeded, ""), want: ServiceUnavailable},

		// Schema drift and missing grants. If any of these mapped by class
		// (42 is INTERNAL), the row fails: a deployment fault would page as
		// a bug and answer 500 instead of 503.
		{name: "42P01_undefined_table", err: pgErr("42P01", `relation "auth.users" does not exist`), want: ServiceUnavailable},
		{name: "42883_undefined_function", err: pgErr("42883", "function auth.f() does not exist"), want: ServiceUnavailable},
		{name: "42704_undefined_object", err: pgErr("42704", `type "auth.role" does not exist`), want: ServiceUnavailable},
		{name: "42501_missing_grant", err: pgErr("42501", "permission denied for table users"), want: ServiceUnavailable},
		{name: "3F000_missing_schema", err: pgErr("3F000", `schema "auth" does not exist`), want: ServiceUnavailable},
		{name: "42601_syntax_error_is_a_bug", err: pgErr("42601", `syntax error at or near "SELEC"`), want: Internal},

		// Connection, operator intervention, resources, login to the
		// database. If class 08/57/53/28/3D fell through to INTERNAL these
		// rows fail (the outage would read as a bug).
		{name: "08006_connection_failure", err: pgErr("08006", "connection failure"), want: ServiceUnavailable},
		{name: "08001_cannot_connect", err: pgErr("08001", "could not connect"), want: ServiceUnavailable},
		{name: "08P01_protocol_violation", err: pgErr("08P01", "protocol violation"), want: ServiceUnavailable},
		{name: "57P01_admin_shutdown", err: pgErr("57P01", "terminating connection due to administrator command"), want: ServiceUnavailable},
		{name: "57P02_crash_shutdown", err: pgErr("57P02", "crash shutdown"), want: ServiceUnavailable},
		{name: "57P03_cannot_connect_now", err: pgErr("57P03", "the database system is starting up"), want: ServiceUnavailable},
		{name: "57014_query_canceled", err: pgErr("57014", "canceling statement due to statement timeout"), want: ServiceUnavailable},
		{name: "53300_too_many_connections", err: pgErr("53300", "too many connections"), want: ServiceUnavailable},
		{name: "53100_disk_full", err: pgErr("53100", "could not extend file"), want: ServiceUnavailable},
		{name: "28P01_invalid_password", err: pgErr("28P01", `password authentication failed for user "mana_auth"`), want: ServiceUnavailable},
		{name: "28000_invalid_authorization", err: pgErr("28000", `role "mana_auth" does not exist`), want: ServiceUnavailable},
		{name: "3D000_no_database", err: pgErr("3D000", `database "mana" does not exist`), want: ServiceUnavailable},
		{name: "0P000_runtime_role_missing", err: pgErr("0P000", `role "mana_auth_runtime" does not exist`), want: ServiceUnavailable},
		{name: "58030_io_error", err: pgErr("58030", "could not read block"), want: ServiceUnavailable},
		{name: "XX001_data_corrupted", err: pgErr("XX001", "invalid page in block"), want: ServiceUnavailable},
		{name: "72000_snapshot_too_old", err: pgErr("72000", "snapshot too old"), want: ServiceUnavailable},
		{name: "F0000_config_file_error", err: pgErr("F0000", "configuration file contains errors"), want: ServiceUnavailable},
		{name: "25006_read_only_after_failover", err: pgErr("25006", "cannot execute INSERT in a read-only transaction"), want: ServiceUnavailable},
		{name: "25P03_idle_in_transaction_timeout", err: pgErr("25P03", "terminating connection due to idle-in-transaction timeout"), want: ServiceUnavailable},
		{name: "55P03_lock_timeout", err: pgErr("55P03", "canceling statement due to lock timeout"), want: ServiceUnavailable},
		{name: "55006_object_in_use", err: pgErr("55006", "database is being accessed by other users"), want: ServiceUnavailable},

		// Retryable: if 40001/40P01 lost their retryable mark these rows
		// fail and Write stops sending Retry-After: 1; 40003 must not be
		// retryable (the statement may have committed).
		{name: "40001_serialization_failure", err: fmt.Errorf("refresh: %w", pgErr("40001", "could not serialize access")), want: ServiceUnavailable, retryable: true},
		{name: "40P01_deadlock", err: pgErr("40P01", "deadlock detected"), want: ServiceUnavailable, retryable: true},
		{name: "40003_completion_unknown", err: pgErr("40003", "statement completion unknown"), want: ServiceUnavailable},

		// Integrity. If 23505 ignored the constraint name, the email rows
		// fail (register would answer CONFLICT); if the name test were case
		// sensitive, the upper-case row fails. NOT NULL and CHECK are bugs
		// (the audit incident: absent values collapsed the SQL); if class 23
		// mapped to CONFLICT those rows fail and the bug hides at warn level.
		{name: "23505_email", err: &pgconn.PgError{Code: "23505", ConstraintName: "users_email_key", Message: "duplicate key"}, want: EmailAlreadyRegistered},
		{name: "23505_email_upper_case", err: &pgconn.PgError{Code: "23505", ConstraintName: "USERS_EMAIL_LOWER_IDX", Message: "duplicate key"}, want: EmailAlreadyRegistered},
		{name: "23505_other_constraint", err: &pgconn.PgError{Code: "23505", ConstraintName: "guilds_pkey", Message: "duplicate key"}, want: Conflict},
		{name: "23505_no_constraint", err: &pgconn.PgError{Code: "23505", Message: "duplicate key"}, want: Conflict},
		{name: "23503_foreign_key", err: pgErr("23503", "violates foreign key constraint"), want: Conflict},
		{name: "23001_restrict", err: pgErr("23001", "restrict violation"), want: Conflict},
		{name: "23P01_exclusion", err: pgErr("23P01", "conflicting key value violates exclusion constraint"), want: Conflict},
		{name: "23502_not_null_is_a_bug", err: pgErr("23502", `null value in column "user_agent"`), want: Internal},
		{name: "23514_check_is_a_bug", err: pgErr("23514", "violates check constraint"), want: Internal},

		// Other classes that are our bugs.
		{name: "22P02_bad_uuid_text", err: pgErr("22P02", `invalid input syntax for type uuid: "abc"`), want: Internal},
		{name: "22001_value_too_long", err: pgErr("22001", "value too long for type character varying(64)"), want: Internal},
		{name: "25P02_in_failed_transaction", err: pgErr("25P02", "current transaction is aborted"), want: Internal},
		{name: "54000_program_limit", err: pgErr("54000", "index row size exceeds maximum"), want: Internal},
		{name: "55000_prerequisite_state", err: pgErr("55000", "currval of sequence is not yet defined"), want: Internal},
		{name: "P0001_raise", err: pgErr("P0001", "raised"), want: Internal},
		// A class PostgreSQL does not define, and malformed codes: INTERNAL.
		// If unknown classes defaulted to anything else these rows fail.
		{name: "unknown_class", err: pgErr("ZZ000", "?"), want: Internal},
		{name: "short_code", err: pgErr("4270", "?"), want: Internal},
		{name: "empty_code", err: pgErr("", "?"), want: Internal},

		// Infrastructure outside PostgreSQL. If any of these fell through to
		// INTERNAL the row fails; the fuzz target also asserts that none of
		// them can ever classify INVALID_CREDENTIALS.
		{name: "connect_error", err: conn, want: ServiceUnavailable},
		{name: "connect_error_wrapped", err: fmt.Errorf("pool: %w", conn), want: ServiceUnavailable},
		// A ConnectError whose cause is neither network nor PostgreSQL: if
		// ConnectError were only recognised through its cause, these rows
		// answer INTERNAL (and the mislabeled one INVALID_CREDENTIALS).
		{name: "connect_error_tls_refused", err: tlsRefused, want: ServiceUnavailable},
		{name: "connect_error_untrusted_certificate", err: fmt.Errorf("pool: %w", untrustedCert), want: ServiceUnavailable},
		{name: "mislabeled_tls_refused", err: Wrap(InvalidCredentials, tlsRefused, ""), want: ServiceUnavailable},
		{name: "closed_pool", err: fmt.Errorf("find user: %w", puddle.ErrClosedPool), want: ServiceUnavailable},
		{name: "conn_closed", err: fmt.Errorf("find user: %w", pgconn.ErrConnClosed), want: ServiceUnavailable},
		{name: "net_op_error", err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, want: ServiceUnavailable},
		{name: "dns_error", err: &net.DNSError{Err: "no such host", Name: "db.internal", IsNotFound: true}, want: ServiceUnavailable},
		{name: "net_timeout", err: fmt.Errorf("read: %w", timeoutErr{}), want: ServiceUnavailable},
		{name: "os_deadline_exceeded", err: fmt.Errorf("read: %w", os.ErrDeadlineExceeded), want: ServiceUnavailable},
		{name: "econnrefused", err: fmt.Errorf("smtp: %w", syscall.ECONNREFUSED), want: ServiceUnavailable},
		{name: "econnreset", err: fmt.Errorf("redis: %w", syscall.ECONNRESET), want: ServiceUnavailable},
		{name: "epipe", err: fmt.Errorf("write: %w", syscall.EPIPE), want: ServiceUnavailable},
		{name: "unexpected_eof", err: fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), want: ServiceUnavailable},
		{name: "other_errno_is_internal", err: fmt.Errorf("open: %w", syscall.ENOENT), want: Internal},
		// Context errors. If context.Canceled answered anything with a
		// status below 500 (in particular INVALID_CREDENTIALS), the
		// client_went_away row fails.
		{name: "deadline_exceeded", err: fmt.Errorf("login: %w", context.DeadlineExceeded), want: ServiceUnavailable},
		{name: "client_went_away", err: fmt.Errorf("login: %w", context.Canceled), want: ServiceUnavailable},
		// Infrastructure wins over a PostgreSQL client-ish code in the same tree.
		{name: "join_unique_violation_and_outage", err: errors.Join(pgErr("23505", "dup"), conn), want: ServiceUnavailable},

		// Request bodies. If these became INTERNAL, a client typo pages the
		// on-call; web.Decode wraps its own errors, these rows cover handlers
		// that surface the raw json errors.
		{name: "json_syntax", err: jsonSyntaxErr(), want: BadRequest},
		{name: "json_type", err: fmt.Errorf("decode: %w", jsonTypeErr()), want: BadRequest},
		{name: "max_bytes", err: fmt.Errorf("decode: %w", &http.MaxBytesError{Limit: 64 << 10}), want: PayloadTooLarge},

		// Everything else is a bug, including io.EOF (body semantics belong
		// to package web) and a typed nil in the chain (it must not panic).
		{name: "plain_error", err: errors.New("boom"), want: Internal},
		{name: "io_eof", err: io.EOF, want: Internal},
		{name: "typed_nil_own_error", err: fmt.Errorf("x: %w", (*Error)(nil)), want: Internal},
		{name: "typed_nil_pg_error", err: fmt.Errorf("x: %w", (*pgconn.PgError)(nil)), want: Internal},
		{name: "uncomparable_error_value", err: fmt.Errorf("x: %w", uncomparableErr{parts: []string{"a"}}), want: Internal},
	}

	seen := map[string]bool{}
	for _, tc := range cases {
		require.Falsef(t, seen[tc.name], "duplicate case name %s", tc.name)
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.err)
			require.NotNil(t, got, "Classify(%s) = nil", tc.name)
			assert.Equalf(t, tc.want, got.Code, "Classify(%s).Code", tc.name)
			assert.GreaterOrEqual(t, got.Status(), 400, "status")
			assert.Equalf(t, tc.lockout, CountsTowardLockout(tc.err), "CountsTowardLockout(%s)", tc.name)
			assert.Equalf(t, tc.retryable, IsRetryable(tc.err), "IsRetryable(%s)", tc.name)
			assert.Equalf(t, tc.want == ServiceUnavailable, IsUnavailable(tc.err), "IsUnavailable(%s)", tc.name)
			assert.Equalf(t, tc.want, CodeOf(tc.err), "CodeOf(%s)", tc.name)
			if tc.same != nil {
				assert.Samef(t, tc.same, got, "Classify(%s) did not return the *Error from the chain", tc.name)
				return
			}
			// A classified error keeps the whole cause and says nothing
			// specific to the client.
			assert.Samef(t, tc.err, got.Err, "Classify(%s).Err must be the original error", tc.name)
			assert.Equalf(t, got.Code.defaultMessage(), got.Message, "Classify(%s).Message", tc.name)
		})
	}
}

func TestClassifyNil(t *testing.T) {
	assert.Nil(t, Classify(nil))
	assert.False(t, CountsTowardLockout(nil))
	assert.False(t, IsUnavailable(nil))
	assert.False(t, IsRetryable(nil))
	assert.Equal(t, Code(""), CodeOf(nil))
}

// TestCountsTowardLockoutOnlyCredentialFailures: if any other code counted
// (say TOKEN_INVALID or ACCOUNT_LOCKED, which would extend the lock), its
// row fails; so does a wrong MFA code that stopped counting (a second
// factor could then be guessed without limit).
func TestCountsTowardLockoutOnlyCredentialFailures(t *testing.T) {
	for _, c := range Codes() {
		err := fmt.Errorf("wrapped: %w", New(c, "m"))
		want := c == InvalidCredentials || c == MFAInvalidCode
		assert.Equalf(t, want, CountsTowardLockout(err), "CountsTowardLockout(New(%s))", c)
	}
}

// TestSQLStateClassTableCoversPostgreSQL reads every SQLSTATE class
// PostgreSQL 15 defines (testdata/sqlstate_classes.txt, from the errcodes
// appendix) and fails, naming the class, when sqlstateClasses has no
// explicit entry for it. A class added to PostgreSQL and to the file, but
// not to the table, fails here; so does a table entry for a class that
// PostgreSQL does not define (a typo).
func TestSQLStateClassTableCoversPostgreSQL(t *testing.T) {
	f, err := os.Open("testdata/sqlstate_classes.txt")
	require.NoError(t, err)
	defer f.Close()

	classLine := regexp.MustCompile(`^([0-9A-Z]{2})\t(.+)$`)
	defined := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := classLine.FindStringSubmatch(line)
		require.NotNilf(t, m, "malformed line in sqlstate_classes.txt: %q", line)
		defined[m[1]] = m[2]
	}
	require.NoError(t, sc.Err())
	require.Len(t, defined, 43, "PostgreSQL 15 defines 43 SQLSTATE classes")

	for class, name := range defined {
		if _, ok := sqlstateClasses[class]; !ok {
			t.Errorf("SQLSTATE class %s (%s) has no entry in sqlstateClasses", class, name)
		}
	}
	for class := range sqlstateClasses {
		if _, ok := defined[class]; !ok {
			t.Errorf("sqlstateClasses has class %s, which PostgreSQL 15 does not define", class)
		}
	}

	// The classes api.md and the brief name explicitly.
	for _, class := range []string{"08", "28", "3D", "3F", "40", "53", "57", "58", "XX"} {
		assert.Equalf(t, ServiceUnavailable, sqlstateClasses[class], "class %s (%s)", class, defined[class])
	}
}

// TestSQLStateCodesAreDeliberate: every exact-code entry is a well-formed
// SQLSTATE of a known class and differs from its class's answer (an entry
// equal to its class would be dead weight that hides what is special).
func TestSQLStateCodesAreDeliberate(t *testing.T) {
	for code, c := range sqlstateCodes {
		require.Regexpf(t, `^[0-9A-Z]{5}$`, code, "exact code %q", code)
		classCode, ok := sqlstateClasses[code[:2]]
		require.Truef(t, ok, "exact code %s has an unknown class", code)
		assert.NotEqualf(t, classCode, c, "exact code %s answers like its class", code)
		assert.Truef(t, c.known(), "exact code %s maps to unknown code %s", code, c)
	}
	for code := range retryableSQLStates {
		assert.Equalf(t, ServiceUnavailable, sqlstateCode(pgErr(code, "")), "retryable %s must classify SERVICE_UNAVAILABLE", code)
	}
}

// TestErrorMethods covers the Error type itself.
func TestErrorMethods(t *testing.T) {
	cause := errors.New("store: no rows")
	e := Wrap(NotFound, cause, "no such guild")
	assert.Equal(t, "NOT_FOUND: no such guild: store: no rows", e.Error())
	assert.Same(t, cause, errors.Unwrap(e))
	require.ErrorIs(t, fmt.Errorf("x: %w", e), cause)
	var target *Error
	require.ErrorAs(t, fmt.Errorf("x: %w", e), &target)
	assert.Same(t, e, target)
	assert.Equal(t, 404, e.Status())

	assert.Equal(t, "UNAUTHORIZED: authentication required", New(Unauthorized, "").Error(), "empty message uses the default")
	assert.Equal(t, "INVALID_CREDENTIALS: invalid email or password", New(InvalidCredentials, "invalid email or password").Error())

	var nilErr *Error
	assert.Equal(t, "<nil>", nilErr.Error())
	assert.Nil(t, nilErr.Unwrap())
	assert.Equal(t, 500, nilErr.Status())
	assert.Equal(t, "<nil>", nilErr.LogValue().String())
}
