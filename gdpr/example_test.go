package gdpr_test

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/gdpr"
)

// notes is a package of a host that keeps notes per user: it exports and
// erases its own table.
type notes struct{}

func (notes) ExportData(ctx context.Context, tx pgx.Tx, s gdpr.Subject, w *gdpr.Writer) error {
	return w.Query(ctx, tx, "app.notes", `SELECT id, title, body, created_at FROM app.notes WHERE user_id = $1 ORDER BY id`, s.UserID)
}

func (notes) EraseData(context.Context, pgx.Tx, gdpr.Subject) error {
	return nil // app.notes.user_id references auth.users ON DELETE CASCADE
}

// A host adds its own table to the export and erasure by implementing
// Exporter and listing it beside the module's packages (see
// examples/server, mountData, for the full list).
func Example() {
	var (
		pool      *pgxpool.Pool
		accounts  gdpr.UserReader  // a *manaauth.Service
		gate      gdpr.AddressBook // a *lockout.Service, also an Exporter
		exporters []gdpr.Exporter  // manaauth, lockout, spaces, apikey, vault, grantpg, bootstrap
		limiter   gdpr.Limiter     // lockout.NewMemoryLimiter(lockout.MemoryConfig{Rate: lockout.Rate{Limit: 5, Period: time.Hour}})
		record    func(context.Context, uuid.UUID, gdpr.Client) error
		deleteAcc func(context.Context, uuid.UUID, string, gdpr.Client) error // manaauth's DeleteAccount
		bearer    func(http.Handler) http.Handler                             // token.Middleware
		userOf    func(*http.Request) (uuid.UUID, error)                      // token.UserFromRequest
	)
	svc, err := gdpr.New(gdpr.Config{Pool: pool, Users: accounts, Addresses: gate,
		Exporters: append(exporters, notes{}), Exported: record})
	if err != nil {
		return
	}
	h, err := gdpr.NewHandler(svc, gdpr.HandlerOptions{UserFromRequest: userOf, Limiter: limiter, Delete: deleteAcc})
	if err != nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/me/data", bearer(http.StripPrefix("/api/v1/me/data", h)))
	mux.Handle("DELETE /api/v1/me/data", bearer(http.StripPrefix("/api/v1/me/data", h)))
}
