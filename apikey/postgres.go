package apikey

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/mana-how/mana-auth/autherr"
)

// keyRow is a row of auth.api_keys, the bun model of the store. Create,
// List and Revoke go through bun (over the pgx pool, through pgx's
// database/sql adapter); Validate and Flush, the hot paths, through pgx.
// bun writes values into the statement text, so the key hash of an insert
// appears in it; the key itself never does, and the hash of a 256-bit key
// is no credential (validation needs the key).
type keyRow struct {
	bun.BaseModel `bun:"table:auth.api_keys,alias:k"`

	ID         uuid.UUID  `bun:"id,pk,type:uuid"`
	UserID     uuid.UUID  `bun:"user_id,type:uuid,notnull"`
	Name       string     `bun:"name,notnull"`
	Prefix     string     `bun:"prefix,notnull"`
	KeyHash    []byte     `bun:"key_hash,type:bytea,notnull"`
	Scopes     []string   `bun:"scopes,array,notnull"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	ExpiresAt  *time.Time `bun:"expires_at"`
	LastUsedAt *time.Time `bun:"last_used_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

// view is the row as its owner sees it; pending, when later than the
// stored last use, is a use this instance has not written yet.
func (r *keyRow) view(pending *time.Time) APIKey {
	k := APIKey{ID: r.ID, Name: r.Name, Prefix: r.Prefix, Scopes: r.Scopes, CreatedAt: r.CreatedAt.UTC(),
		ExpiresAt: utcPtr(r.ExpiresAt), LastUsedAt: utcPtr(r.LastUsedAt)}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if pending != nil && (k.LastUsedAt == nil || pending.After(*k.LastUsedAt)) {
		k.LastUsedAt = utcPtr(pending)
	}
	return k
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// dbErr marks the database/sql errors that mean the connection, not the
// statement, failed, so that they answer SERVICE_UNAVAILABLE like pgx's
// own (autherr knows pgx's errors, not database/sql's sentinels).
func dbErr(err error) error {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return autherr.Wrap(autherr.ServiceUnavailable, err, "")
	}
	return err
}
