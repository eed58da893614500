package token

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
)

// tokCtxKey is the context key of the claims; unexported, so only this
// package can set or read them.
type tokCtxKey struct{}

// ContextWithClaims returns ctx carrying c, for tests and for hosts that
// authenticate requests another way.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, tokCtxKey{}, c)
}

// ClaimsFromContext returns the claims Middleware (or ContextWithClaims)
// put in ctx; false when there are none.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(tokCtxKey{}).(*Claims)
	return c, ok && c != nil
}

// Middleware authenticates requests by their Bearer access token, verified
// locally with t (no database), and passes the claims to next in the
// request context (ClaimsFromContext). It answers, through autherr.Write
// (the JSON envelope) and with a WWW-Authenticate challenge (RFC 6750):
//
//   - 401 UNAUTHORIZED, `WWW-Authenticate: Bearer`, when the Authorization
//     header is missing, empty, repeated, of another scheme (Basic, …) or
//     carries no token;
//   - 401 TOKEN_INVALID or TOKEN_EXPIRED (see Tokens.Verify),
//     `WWW-Authenticate: Bearer error="invalid_token"`, when the token
//     does not verify.
//
// v is a *Tokens (the issuer's own keys) or a *Checker (verify-only, from
// public keys or a JWKS URL). A nil v is a wiring bug and panics here, at
// setup, not on a request. Errors are logged to slog.Default();
// MiddlewareWith takes the writer.
func Middleware(v Verifier) func(http.Handler) http.Handler {
	return MiddlewareWith(v, autherr.Writer{})
}

// Verifier checks an access token and returns its claims; *Tokens and
// *Checker implement it. Errors are *autherr.Error: TOKEN_INVALID or
// TOKEN_EXPIRED for a token that does not verify, SERVICE_UNAVAILABLE when
// the keys cannot be had (a Checker whose JWKS URL does not answer).
type Verifier interface {
	Verify(token string) (*Claims, error)
}

var (
	_ Verifier = (*Tokens)(nil)
	_ Verifier = (*Checker)(nil)
)

// MiddlewareWith is Middleware answering its errors through errs (its
// logger and metrics hook).
func MiddlewareWith(v Verifier, errs autherr.Writer) func(http.Handler) http.Handler {
	if isNil(v) {
		panic("token: Middleware: nil Verifier")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, err := tokBearer(r)
			if err != nil {
				w.Header().Set("WWW-Authenticate", "Bearer")
				errs.Write(w, r, err)
				return
			}
			claims, err := v.Verify(token)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				errs.Write(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), claims)))
		})
	}
}

// tokBearer extracts the token of `Authorization: Bearer <token>`. The
// scheme is case-insensitive (RFC 9110 section 11.1); the token is what
// follows the spaces after it.
func tokBearer(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("token: no Authorization header"), "")
	case 1:
	default:
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("token: more than one Authorization header"), "")
	}
	v := strings.TrimSpace(values[0])
	if v == "" {
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("token: empty Authorization header"), "")
	}
	scheme, token, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// The scheme is not quoted in the cause: a client that sends a
		// bare token has it where the scheme should be, and tokens never
		// reach the logs.
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("token: Authorization scheme is not Bearer"), "")
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("token: Bearer without a token"), "")
	}
	return token, nil
}

// isNil reports a nil Verifier, also a typed nil pointer in the interface.
func isNil(v Verifier) bool {
	switch x := v.(type) {
	case nil:
		return true
	case *Tokens:
		return x == nil
	case *Checker:
		return x == nil
	}
	return false
}

// UserFromRequest returns the user of a request that passed Middleware (the
// subject of its access token). It is what vault, grant and bootstrap take
// as their HandlerOptions.UserFromRequest.
//
// Errors: UNAUTHORIZED when the request carries no claims (the route is
// not behind Middleware), TOKEN_INVALID when the subject is not a UUID.
func UserFromRequest(r *http.Request) (uuid.UUID, error) {
	userID, _, err := SessionFromRequest(r)
	return userID, err
}

// SessionFromRequest returns the user and the session of a request that
// passed Middleware.
//
// Errors: as UserFromRequest.
func SessionFromRequest(r *http.Request) (userID, sessionID uuid.UUID, err error) {
	c, ok := ClaimsFromContext(r.Context())
	if !ok {
		return uuid.Nil, uuid.Nil, autherr.New(autherr.Unauthorized, "authentication required")
	}
	if userID, err = c.UserID(); err != nil {
		return uuid.Nil, uuid.Nil, autherr.Wrap(autherr.TokenInvalid, err, "invalid token")
	}
	if sessionID, err = uuid.Parse(c.SessionID); err != nil {
		return uuid.Nil, uuid.Nil, autherr.Wrap(autherr.TokenInvalid, err, "invalid token")
	}
	return userID, sessionID, nil
}
