package vault

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
)

// KEKHolder is what UnknownKEKs asks of a KeyWrapper: whether it can open
// wraps under an id. *KeyRing implements it; a KeyWrapper that does not is
// trusted to hold every id.
type KEKHolder interface {
	Has(kekID string) bool
}

// UnknownKEKs counts the stored vaults wrapped under a KEK id the
// service's keys do not hold, by id — what makes the reference server
// refuse to report ready (every such vault would answer 503). It reads
// ids and counts only, through auth.encryption_vault_kek_ids() (the
// runtime role cannot see other users' rows). An empty map means every
// vault can be opened.
//
// Errors: SERVICE_UNAVAILABLE when the database cannot be read.
func (s *Service) UnknownKEKs(ctx context.Context) (map[string]int64, error) {
	unknown, err := CountUnknownKEKs(ctx, s.pool, s.keys, `SELECT kek_id, vaults FROM auth.encryption_vault_kek_ids()`)
	if err != nil {
		return nil, fmt.Errorf("vault: KEK inventory: %w", err)
	}
	return unknown, nil
}

// Rows is what CountUnknownKEKs reads through: a pool, a connection or a
// transaction.
type Rows interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// CountUnknownKEKs runs query, which returns (kek_id text, count bigint)
// rows, and keeps the counts of the ids keys do not hold — the inventory
// behind Service.UnknownKEKs, shared with the other packages that seal
// data under the KEK ring (mfa's TOTP secrets). It returns nil when keys
// cannot tell (it does not implement KEKHolder).
func CountUnknownKEKs(ctx context.Context, db Rows, keys KeyWrapper, query string) (map[string]int64, error) {
	holder, ok := keys.(KEKHolder)
	if !ok {
		return nil, nil
	}
	rows, err := db.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	unknown := map[string]int64{}
	var id string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		if !holder.Has(id) {
			unknown[id] = n
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return unknown, nil
}

// UnknownKEKsError describes what UnknownKEKs found, for a log line:
// "KEK ids not in the key ring: dev (12 vaults); …".
func UnknownKEKsError(unknown map[string]int64, ring []string) error {
	if len(unknown) == 0 {
		return nil
	}
	msg := "vaults are wrapped under KEK ids the key ring does not hold:"
	for _, id := range slices.Sorted(maps.Keys(unknown)) {
		msg += fmt.Sprintf(" %q (%d vaults)", id, unknown[id])
	}
	return fmt.Errorf("%s; the ring holds %q — add the old KEK to %s (e.g. %s=\"<new id>:<new>,<old id>:<old>\"), then run rewrap",
		msg, ring, EnvKEKs, EnvKEKs)
}
