package gdpr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/autherr"
)

// UserSetting is the transaction-local setting the row-level security
// policies read the current user from (api.md, "Tables that other systems
// read").
const UserSetting = "app.current_user_id"

// Config configures a Service.
type Config struct {
	// Pool connects as the runtime role (row-level security applies);
	// required.
	Pool *pgxpool.Pool
	// Users answers the export's "user" object; required (manaauth).
	Users UserReader
	// Addresses names the addresses attributed to an account; required
	// (lockout, which keeps the history of every account's addresses).
	Addresses AddressBook
	// Exporters are the packages that own rows about a user, each
	// exporting and erasing its own tables; at least one. Their sections
	// appear in this order.
	Exporters []Exporter
	// Exported records an export before its first byte is sent (the
	// reference server writes the DATA_EXPORTED security event); required.
	// Its error refuses the export: no export leaves no trace.
	Exported func(ctx context.Context, userID uuid.UUID, c Client) error
	Now      func() time.Time // nil: time.Now
	Logger   *slog.Logger     // nil: slog.Default()
}

// Service exports and erases everything the configured packages store
// about a user.
type Service struct {
	cfg    Config
	now    func() time.Time
	logger *slog.Logger
}

// New validates cfg.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("gdpr: Config.Pool is required")
	case cfg.Users == nil:
		return nil, errors.New("gdpr: Config.Users is required")
	case cfg.Addresses == nil:
		return nil, errors.New("gdpr: Config.Addresses is required")
	case len(cfg.Exporters) == 0:
		return nil, errors.New("gdpr: Config.Exporters must name at least one exporter")
	case cfg.Exported == nil:
		return nil, errors.New("gdpr: Config.Exported is required (an export must leave a trace)")
	}
	for i, e := range cfg.Exporters {
		if e == nil {
			return nil, fmt.Errorf("gdpr: Config.Exporters[%d] is nil", i)
		}
	}
	s := &Service{cfg: cfg, now: cfg.Now, logger: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return s, nil
}

// Stats describes a finished export.
type Stats struct {
	Sections []string
	Rows     int64
}

// Export streams everything stored about userID, as one JSON document, to
// the writer open returns. It takes the snapshot (one REPEATABLE READ, READ
// ONLY transaction with app.current_user_id set to userID and the time
// zone UTC), reads the user and the addresses, records the export
// (Config.Exported), and only then calls open with the export's time —
// so an error until then is answered whole (the HTTP handler sets its
// headers in open). An error after open means the document was cut short.
//
// Errors: UNAUTHORIZED (nil userID), NOT_FOUND (no such account), the
// Exported hook's, SERVICE_UNAVAILABLE; after open, whatever stopped the
// stream (the database, the client went away).
func (s *Service) Export(ctx context.Context, userID uuid.UUID, c Client, open func(exportedAt time.Time) io.Writer) (Stats, error) {
	if userID == uuid.Nil {
		return Stats{}, autherr.New(autherr.Unauthorized, "authentication required")
	}
	tx, err := s.cfg.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Stats{}, fmt.Errorf("gdpr: export: begin: %w", err)
	}
	defer func() {
		if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			s.logger.Warn("gdpr: export: rollback failed", "err", err)
		}
	}()
	// The first statement takes the snapshot.
	if _, err := tx.Exec(ctx, `SELECT set_config('`+UserSetting+`', $1, true), set_config('TimeZone', 'UTC', true)`,
		userID.String()); err != nil {
		return Stats{}, fmt.Errorf("gdpr: export: settings: %w", err)
	}
	user, err := s.cfg.Users.ExportUser(ctx, tx, userID)
	if err != nil {
		return Stats{}, fmt.Errorf("gdpr: export: user: %w", err)
	}
	userJSON, err := json.Marshal(user)
	if err != nil {
		return Stats{}, fmt.Errorf("gdpr: export: encode user: %w", err)
	}
	emails, err := s.cfg.Addresses.Addresses(ctx, tx, userID)
	if err != nil {
		return Stats{}, fmt.Errorf("gdpr: export: addresses: %w", err)
	}
	if err := s.cfg.Exported(ctx, userID, c); err != nil {
		return Stats{}, fmt.Errorf("gdpr: export: record: %w", err)
	}
	at := s.now().UTC().Truncate(time.Second)
	atJSON, err := json.Marshal(at.Format(time.RFC3339))
	if err != nil {
		return Stats{}, fmt.Errorf("gdpr: export: encode time: %w", err)
	}

	w := NewWriter(open(at))
	subj := Subject{UserID: userID, Emails: emails}
	if _, err := fmt.Fprintf(w.bw, `{"exportedAt":%s,"user":%s,"sections":{`, atJSON, userJSON); err != nil {
		return Stats{}, fmt.Errorf("gdpr: export: write: %w", err)
	}
	for _, e := range s.cfg.Exporters {
		if err := e.ExportData(ctx, tx, subj, w); err != nil {
			return w.stats(), fmt.Errorf("gdpr: export %T: %w", e, err)
		}
	}
	if _, err := w.bw.WriteString("}}\n"); err != nil {
		return w.stats(), fmt.Errorf("gdpr: export: write: %w", err)
	}
	if err := w.bw.Flush(); err != nil {
		return w.stats(), fmt.Errorf("gdpr: export: write: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return w.stats(), fmt.Errorf("gdpr: export: end: %w", err)
	}
	return w.stats(), nil
}

func (w *Writer) stats() Stats { return Stats{Sections: w.Sections(), Rows: w.rows} }

// Erase removes or anonymises everything the exporters hold about userID,
// inside tx: the transaction that deletes the account, before the user row
// is deleted. Wire it into manaauth's Hooks.UserDeletingTx (after any hook
// that may refuse the deletion), so that every way of deleting an account
// erases the same rows. The addresses are resolved first, while the
// account's history still exists.
//
// Errors: the exporters' (SERVICE_UNAVAILABLE for the database).
func (s *Service) Erase(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	if userID == uuid.Nil {
		return autherr.New(autherr.Unauthorized, "authentication required")
	}
	emails, err := s.cfg.Addresses.Addresses(ctx, tx, userID)
	if err != nil {
		return fmt.Errorf("gdpr: erase: addresses: %w", err)
	}
	subj := Subject{UserID: userID, Emails: emails}
	for _, e := range s.cfg.Exporters {
		if err := e.EraseData(ctx, tx, subj); err != nil {
			return fmt.Errorf("gdpr: erase %T: %w", e, err)
		}
	}
	return nil
}
