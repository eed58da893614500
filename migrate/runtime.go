package migrate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Execer is what SetRuntimePassword needs: a pool, a connection or a
// transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SetRuntimePassword sets the login password of RuntimeRole, through a
// connection of a role that may alter it (the owner that ran the
// migrations, with CREATEROLE, or a superuser). Foundation creates the role
// and its schema grants, and each package's migrations grant it its
// tables; the password is what a host adds so that its pool can log in as
// the role (DATABASE_URL in production names the role and this password).
//
// The password must be 16 to 128 characters of A-Z a-z 0-9 and . _ ~ + /
// = - (hex or base64 of random bytes): ALTER ROLE takes no parameters, so
// the value is checked instead of escaped.
func SetRuntimePassword(ctx context.Context, db Execer, password string) error {
	if err := checkRolePassword(password); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "ALTER ROLE "+pgx.Identifier{RuntimeRole}.Sanitize()+" PASSWORD '"+password+"'"); err != nil {
		return fmt.Errorf("migrate: set the password of %s: %w", RuntimeRole, err)
	}
	return nil
}

func checkRolePassword(p string) error {
	if len(p) < 16 || len(p) > 128 {
		return fmt.Errorf("migrate: runtime role password: %d characters, want 16 to 128", len(p))
	}
	for _, c := range p {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("._~+/=-", c)) {
			return errors.New("migrate: runtime role password: only A-Z a-z 0-9 and . _ ~ + / = - are accepted")
		}
	}
	return nil
}

// RuntimeURL returns dbURL (a postgres:// URL, typically the owner's) with
// its user and password replaced by RuntimeRole and password: the same
// server and database, logged in as the role the services run as.
func RuntimeURL(dbURL, password string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("migrate: runtime URL: only postgres:// URLs are supported")
	}
	if password == "" {
		u.User = url.User(RuntimeRole)
	} else {
		u.User = url.UserPassword(RuntimeRole, password)
	}
	return u.String(), nil
}
