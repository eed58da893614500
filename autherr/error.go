package autherr

import (
	"log/slog"
	"slices"
)

// Error is a classified error: a wire code, a message for the client and the
// cause for the logs.
//
// Message is shown to the client and must be safe for it (no SQL, no
// internals); empty means the code's default message. For INTERNAL and
// SERVICE_UNAVAILABLE the client always sees the generic message and no
// details; Message then only reaches the logs. Err, the cause, is never
// shown to the client; it is logged. Details is sent to the client as
// "details" (VALIDATION_FAILED puts its per-field reasons under "fields");
// only its keys are logged. Neither Message, Err's text nor Details may ever
// hold a secret: no password, token, key byte or secret-bearing URL.
type Error struct {
	Code             Code
	Message          string
	Err              error
	RemainingSeconds int            // > 0: sent as remainingSeconds and Retry-After
	Details          map[string]any // optional; client-visible, never secrets
}

// New returns an error with the given code and client-safe message.
func New(code Code, msg string) *Error {
	return &Error{Code: code, Message: msg}
}

// Wrap returns an error with the given code and client-safe message that
// keeps err as its cause (logged, never sent).
func Wrap(code Code, err error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: err}
}

// Error is "CODE: message: cause", for logs and tests.
func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	s := string(e.Code) + ": " + e.message()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Status is the HTTP status of the code (500 for an unknown code).
func (e *Error) Status() int {
	if e == nil {
		return Internal.Status()
	}
	return e.Code.Status()
}

func (e *Error) message() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Code.defaultMessage()
}

// LogValue implements slog.LogValuer: code, status, message, cause text and,
// when the cause holds a PostgreSQL error (see Classify), its SQLSTATE and,
// from the exported fields of pgx's *pgconn.PgError, severity, schema,
// table, column and constraint. Of Details only the keys are logged. The
// PgError's Detail (which can quote row values such as an email address) is
// left out.
func (e *Error) LogValue() slog.Value {
	if e == nil {
		return slog.StringValue("<nil>")
	}
	attrs := []slog.Attr{
		slog.String("code", string(e.Code)),
		slog.Int("status", e.Status()),
		slog.String("message", e.message()),
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	if e.RemainingSeconds > 0 {
		attrs = append(attrs, slog.Int("remainingSeconds", e.RemainingSeconds))
	}
	if len(e.Details) > 0 {
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		attrs = append(attrs, slog.Any("detailKeys", keys))
	}
	if pg := findSQLState(e.Err); pg != nil {
		attrs = append(attrs, slog.String("sqlstate", pg.SQLState()))
		for _, f := range []struct{ k, field string }{
			{"severity", "Severity"},
			{"schema", "SchemaName"},
			{"table", "TableName"},
			{"column", "ColumnName"},
			{"constraint", "ConstraintName"},
		} {
			if v := pgErrorField(pg, f.field); v != "" {
				attrs = append(attrs, slog.String(f.k, v))
			}
		}
	}
	return slog.GroupValue(attrs...)
}
