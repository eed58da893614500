package manaauth

import (
	"context"
	"errors"
	"net/http"
	"strings"

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
// A nil t is a wiring bug and panics here, at setup, not on a request.
// Errors are logged to slog.Default(); MiddlewareWith takes the writer.
func Middleware(t *Tokens) func(http.Handler) http.Handler {
	return MiddlewareWith(t, autherr.Writer{})
}

// MiddlewareWith is Middleware answering its errors through errs (its
// logger and metrics hook).
func MiddlewareWith(t *Tokens, errs autherr.Writer) func(http.Handler) http.Handler {
	if t == nil {
		panic("manaauth: Middleware: nil *Tokens")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, err := tokBearer(r)
			if err != nil {
				w.Header().Set("WWW-Authenticate", "Bearer")
				errs.Write(w, r, err)
				return
			}
			claims, err := t.Verify(token)
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
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("manaauth: no Authorization header"), "")
	case 1:
	default:
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("manaauth: more than one Authorization header"), "")
	}
	v := strings.TrimSpace(values[0])
	if v == "" {
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("manaauth: empty Authorization header"), "")
	}
	scheme, token, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// The scheme is not quoted in the cause: a client that sends a
		// bare token has it where the scheme should be, and tokens never
		// reach the logs.
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("manaauth: Authorization scheme is not Bearer"), "")
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", autherr.Wrap(autherr.Unauthorized, errors.New("manaauth: Bearer without a token"), "")
	}
	return token, nil
}
