package passkey

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/web"
)

var errNoSuchPasskey = autherr.New(autherr.NotFound, "no such passkey")

// List returns the user's passkeys, oldest first.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) List(ctx context.Context, userID uuid.UUID) ([]Passkey, error) {
	var rows []credentialRow
	if err := s.db.NewSelect().Model(&rows).ExcludeColumn("credential_id", "public_key").
		Where("user_id = ?", userID).Order("created_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("passkey: list: %w", err)
	}
	out := make([]Passkey, len(rows))
	for i := range rows {
		out[i] = rows[i].passkey()
	}
	return out, nil
}

// Rename names one of the user's passkeys (1–64 characters once trimmed,
// see ValidName) and writes PASSKEY_RENAMED with the old and the new
// name; the same name again changes nothing and writes nothing.
//
// Errors: VALIDATION_FAILED, NOT_FOUND (no such passkey of this user),
// SERVICE_UNAVAILABLE.
func (s *Service) Rename(ctx context.Context, userID, id uuid.UUID, name string, c manaauth.Client) (Passkey, error) {
	name, err := ValidName(name)
	if err != nil {
		return Passkey{}, web.Invalid(map[string]string{"name": err.Error()})
	}
	var row credentialRow
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewSelect().Model(&row).ExcludeColumn("credential_id", "public_key").
			Where("id = ? AND user_id = ?", id, userID).For("UPDATE").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return errNoSuchPasskey
		}
		if err != nil || row.Name == name {
			return err
		}
		old := row.Name
		row.Name = name
		if _, err := tx.NewUpdate().Model(&row).Column("name").WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.accounts.Events().InsertSQL(ctx, tx.Tx, lockout.Event{Type: lockout.PasskeyRenamed, UserID: userID,
			IP: c.IP, UserAgent: c.UserAgent, Metadata: map[string]any{"passkeyId": id.String(), "name": name, "previousName": old}})
	})
	if err != nil {
		return Passkey{}, fmt.Errorf("passkey: rename: %w", err)
	}
	return row.passkey(), nil
}

// Delete removes one of the user's passkeys and writes PASSKEY_DELETED.
// The last passkey of an account without a password is refused, so that
// nobody locks themselves out: the user's passkeys are locked first, so
// two deletions racing for the last two run one after the other and the
// second sees it would remove the last.
//
// Errors: NOT_FOUND (no such passkey of this user), CONFLICT
// (details.reason last_credential), SERVICE_UNAVAILABLE.
func (s *Service) Delete(ctx context.Context, userID, id uuid.UUID, c manaauth.Client) error {
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var rows []credentialRow
		if err := tx.NewSelect().Model(&rows).Column("id", "name").Where("user_id = ?", userID).
			OrderExpr("id").For("UPDATE").Scan(ctx); err != nil {
			return err
		}
		var target *credentialRow
		for i := range rows {
			if rows[i].ID == id {
				target = &rows[i]
			}
		}
		if target == nil {
			return errNoSuchPasskey
		}
		if len(rows) == 1 {
			var hasPassword bool
			if err := tx.NewRaw(`SELECT password_hash IS NOT NULL FROM auth.users WHERE id = ?`, userID).
				Scan(ctx, &hasPassword); err != nil {
				return err
			}
			if !hasPassword {
				e := autherr.New(autherr.Conflict, "this is the only way to sign in to the account: set a password or add another passkey first")
				e.Details = map[string]any{"reason": "last_credential"}
				return e
			}
		}
		if _, err := tx.NewDelete().Model(target).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.accounts.Events().InsertSQL(ctx, tx.Tx, lockout.Event{Type: lockout.PasskeyDeleted, UserID: userID,
			IP: c.IP, UserAgent: c.UserAgent, Metadata: map[string]any{"passkeyId": id.String(), "name": target.Name}})
	})
	if err != nil {
		return fmt.Errorf("passkey: delete: %w", err)
	}
	return nil
}
