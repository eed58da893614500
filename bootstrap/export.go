package bootstrap

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/gdpr"
)

var _ gdpr.Exporter = (*Bootstrapper)(nil)

// ExportData writes the subject's rows of mana_sync.sync_changes: the
// change log rows attributed to the user (user_id), its own singletons and
// the kontext documents of the spaces it owns included (gdpr.Exporter).
func (b *Bootstrapper) ExportData(ctx context.Context, tx pgx.Tx, subj gdpr.Subject, w *gdpr.Writer) error {
	return w.Query(ctx, tx, "mana_sync.sync_changes", `SELECT id, app_id, table_name, record_id, space_id, op, data, field_meta,
		client_id, origin, created_at
		FROM mana_sync.sync_changes WHERE user_id = $1 ORDER BY id`, subj.UserID)
}

// EraseData does nothing: the rows go with the account row (user_id ON
// DELETE CASCADE) in the same transaction (gdpr.Exporter).
func (b *Bootstrapper) EraseData(context.Context, pgx.Tx, gdpr.Subject) error { return nil }
