package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Space is a space a user belongs to, as a SpaceLister reports it.
type Space struct {
	ID          uuid.UUID
	OwnerUserID uuid.UUID // user_id of the space's kontext document
}

// SpaceLister lists the spaces of a user; manaauth's spaces implement it.
//
// SpacesOf returns every space userID belongs to, the Personal space
// included, each with its owner; none is an empty list and a nil error.
// Its errors are returned to the caller of Reconcile wrapped, so they keep
// their autherr classification (a database that is down stays
// SERVICE_UNAVAILABLE).
type SpaceLister interface {
	SpacesOf(ctx context.Context, userID uuid.UUID) ([]Space, error)
}

// Result reports, per singleton, whether Reconcile inserted it now (true)
// or found it already there (false). It encodes as api.md's
// {"userContext": bool, "spaces": {"<spaceId>": bool}}.
type Result struct {
	UserContext bool               `json:"userContext"`
	Spaces      map[uuid.UUID]bool `json:"spaces"` // never nil
}

// Reconcile makes sure every singleton of userID exists: the user's
// context row and the kontext document of every space spaces lists for
// the user (a nil lister: the context row only). It inserts what is
// missing, in one transaction, and reports what it inserted; a second call
// inserts nothing. Rows it had to insert are logged at INFO (they should
// have been made at signup or space creation).
//
// Errors: UNAUTHORIZED (ErrNoUser) for a nil user; INTERNAL
// (ErrInvalidSpace) when the lister reports a space without id or owner,
// or one space with two owners; the lister's own errors; otherwise as
// BootstrapUserSingletons. On error nothing is inserted.
func (b *Bootstrapper) Reconcile(ctx context.Context, userID uuid.UUID, spaces SpaceLister) (Result, error) {
	user, err := userSingleton(userID)
	if err != nil {
		return Result{}, err
	}
	var listed []Space
	if spaces != nil {
		if listed, err = spaces.SpacesOf(ctx, userID); err != nil {
			return Result{}, fmt.Errorf("bootstrap: list the spaces of the user: %w", err)
		}
	}
	todo := []singleton{user}
	owners := make(map[uuid.UUID]uuid.UUID, len(listed))
	for _, sp := range listed {
		s, err := spaceSingleton(sp.ID, sp.OwnerUserID)
		if err != nil {
			return Result{}, fmt.Errorf("bootstrap: the space lister reported %+v: %w", sp, err)
		}
		if owner, seen := owners[sp.ID]; seen {
			if owner != sp.OwnerUserID {
				return Result{}, fmt.Errorf("bootstrap: the space lister reported space %s with owners %s and %s: %w",
					sp.ID, owner, sp.OwnerUserID, ErrInvalidSpace)
			}
			continue // listed twice: one row, one answer
		}
		owners[sp.ID] = sp.OwnerUserID
		todo = append(todo, s)
	}

	// One order for every caller: two reconciles of members of the same
	// spaces wait for each other's rows in the same order, never in a
	// cycle (which PostgreSQL would end as a deadlock).
	slices.SortFunc(todo[1:], func(x, y singleton) int { return bytes.Compare(x.space[:], y.space[:]) })

	inserted := make([]bool, len(todo))
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, s := range todo {
			args, err := b.args(s)
			if err != nil {
				return err
			}
			batch.Queue(insertSQL, args...)
		}
		res := tx.SendBatch(ctx, batch)
		var err error
		for i, s := range todo {
			if inserted[i], err = scanInserted(res.QueryRow(), s); err != nil {
				break
			}
		}
		// After a failed statement Close reports that same error again.
		if cErr := closeBatch(res); err == nil {
			err = cErr
		}
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("bootstrap: reconcile: %w", err)
	}

	out := Result{UserContext: inserted[0], Spaces: make(map[uuid.UUID]bool, len(todo)-1)}
	for i, s := range todo {
		if i > 0 {
			out.Spaces[*s.space] = inserted[i]
		}
		if inserted[i] {
			b.logger.LogAttrs(ctx, slog.LevelInfo, "bootstrap: reconcile inserted a missing singleton",
				slog.String("appId", s.app), slog.String("table", s.table), slog.String("recordId", s.record),
				slog.String("userId", s.user.String()))
		}
	}
	return out, nil
}
