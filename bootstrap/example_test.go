package bootstrap_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/bootstrap"
)

// spacesOf stands in for manaauth's spaces, which implement SpaceLister.
type spacesOf func(ctx context.Context, userID uuid.UUID) ([]bootstrap.Space, error)

func (f spacesOf) SpacesOf(ctx context.Context, userID uuid.UUID) ([]bootstrap.Space, error) {
	return f(ctx, userID)
}

// A host mounts the reconcile endpoint for its exact path, behind its own
// authentication. With manaauth the user function is built on
// token.ClaimsFromContext and the handler is wrapped in
// token.Middleware.
func ExampleNewHandler() {
	var b *bootstrap.Bootstrapper // bootstrap.New(bootstrap.Config{Pool: runtimePool}); compiled, not run
	h, err := bootstrap.NewHandler(b, bootstrap.HandlerOptions{
		UserFromRequest: func(r *http.Request) (uuid.UUID, error) {
			// c, ok := token.ClaimsFromContext(r.Context()); if ok { return c.UserID() }
			return uuid.Nil, autherr.New(autherr.Unauthorized, "")
		},
		Spaces: spacesOf(func(ctx context.Context, userID uuid.UUID) ([]bootstrap.Space, error) {
			return nil, nil // every space of userID with its owner
		}),
	})
	if err != nil {
		return // b is nil here; a real host stops on this error
	}
	mux := http.NewServeMux()
	const prefix = "/api/v1/me/bootstrap-singletons"
	mux.Handle("POST "+prefix, http.StripPrefix(prefix, h))
}

// The one helper that stamps every top-level field of a singleton's data.
func ExampleFieldMeta() {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, data := range []map[string]any{bootstrap.UserContextData(), bootstrap.KontextDocData()} {
		d, err := json.Marshal(data)
		if err != nil {
			panic(err)
		}
		m, err := json.Marshal(bootstrap.FieldMeta(data, at))
		if err != nil {
			panic(err)
		}
		fmt.Printf("data %s field_meta %s\n", d, m)
	}
	// Output:
	// data {} field_meta {}
	// data {"blocks":[]} field_meta {"blocks":{"updatedAt":"2026-05-01T12:00:00.000Z","origin":"system"}}
}

// At signup, in the transaction that creates the user and the Personal
// space: a failed bootstrap leaves the transaction usable (it ran under a
// savepoint), so the signup logs it, counts it and commits; the client's
// reconcile call inserts the rows later.
func ExampleBootstrapper_BootstrapUserSingletonsTx() {
	ctx := context.Background()
	var pool *pgxpool.Pool        // the runtime pool; compiled, not run
	var b *bootstrap.Bootstrapper // bootstrap.New(bootstrap.Config{Pool: pool})
	logger := slog.Default()
	userID, personalID := uuid.New(), uuid.New()

	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// INSERT INTO auth.users …; INSERT the Personal space …
		if _, err := b.BootstrapUserSingletonsTx(ctx, tx, userID); err != nil {
			logger.Warn("signup: bootstrap of the user singletons failed", "user", userID, "err", err)
		}
		if _, err := b.BootstrapSpaceSingletonsTx(ctx, tx, personalID, userID); err != nil {
			logger.Warn("signup: bootstrap of the Personal space failed", "space", personalID, "err", err)
		}
		return nil
	})
	if err != nil {
		logger.Error("signup failed", "err", err)
	}
}
