package autherr_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mana-how/mana-auth/autherr"
)

// A login handler whose user lookup hits schema drift: the client gets a
// generic 503, the log gets the SQLSTATE, and the lockout is not bumped.
func Example() {
	// Log to stdout without timestamps so the example output is stable.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	errs := autherr.Writer{Logger: logger}

	login := func(w http.ResponseWriter, r *http.Request) {
		err := fmt.Errorf("login: find user: %w", &pgconn.PgError{
			Severity: "ERROR", Code: "42703", Message: `column "email" does not exist`,
			TableName: "users", ColumnName: "email",
		})
		if autherr.CountsTowardLockout(err) {
			fmt.Println("lockout bumped") // not reached: a database error never counts
		}
		errs.Write(w, r, err)
	}

	rec := httptest.NewRecorder()
	rec.Header().Set(autherr.RequestIDHeader, "req-1") // done by web.RequestID
	login(rec, httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", nil))

	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())
	// Output:
	// level=ERROR msg="request failed" error.code=SERVICE_UNAVAILABLE error.status=503 error.message="service temporarily unavailable" error.cause="login: find user: ERROR: column \"email\" does not exist (SQLSTATE 42703)" error.sqlstate=42703 error.severity=ERROR error.table=users error.column=email method=POST path=/api/v1/auth/login requestId=req-1
	// 503 application/json
	// {"error":{"code":"SERVICE_UNAVAILABLE","message":"service temporarily unavailable","requestId":"req-1"}}
}

func ExampleClassify() {
	for _, err := range []error{
		autherr.New(autherr.InvalidCredentials, "invalid email or password"),
		&pgconn.PgError{Code: "23505", ConstraintName: "users_email_key"},
		&pgconn.PgError{Code: "53300", Message: "too many connections"},
		fmt.Errorf("login: %w", context.Canceled),
		fmt.Errorf("issue token: unexpected key type"),
	} {
		e := autherr.Classify(err)
		fmt.Println(e.Code, e.Status(), autherr.CountsTowardLockout(err))
	}
	// Output:
	// INVALID_CREDENTIALS 401 true
	// EMAIL_ALREADY_REGISTERED 409 false
	// SERVICE_UNAVAILABLE 503 false
	// SERVICE_UNAVAILABLE 503 false
	// INTERNAL 500 false
}

// A service reports a lockout with the time left; Write sends it as
// remainingSeconds and Retry-After.
func ExampleError_lockout() {
	err := &autherr.Error{Code: autherr.AccountLocked, RemainingSeconds: 1799}

	rec := httptest.NewRecorder()
	autherr.Writer{Logger: slog.New(slog.DiscardHandler)}.Write(rec, httptest.NewRequest(http.MethodPost, "/login", nil), err)
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	fmt.Print(rec.Body.String())
	// Output:
	// 429 1799
	// {"error":{"code":"ACCOUNT_LOCKED","message":"account temporarily locked","requestId":"","remainingSeconds":1799}}
}
