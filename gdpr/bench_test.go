package gdpr_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/gdpr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
)

// BenchmarkExport exports a user with n security events (and 100 login
// attempts) to io.Discard: the time per export, and the memory it
// allocates, which stays about the same whatever n (rows are copied from
// PostgreSQL to the writer one at a time, through a 32 KiB buffer). The
// DATA_EXPORTED event is not written here, so every export reads the same
// rows.
func BenchmarkExport(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			db := testutil.DB(b)
			ctx := context.Background()
			var user uuid.UUID
			require.NoError(b, db.Owner.QueryRow(ctx, `INSERT INTO auth.users (email) VALUES ('bench@example.test') RETURNING id`).Scan(&user))
			for _, sql := range []string{`INSERT INTO auth.security_events (event_type, user_id, ip_address, user_agent, metadata, created_at)
				SELECT 'LOGIN_SUCCESS', $1, '203.0.113.7', 'Mozilla/5.0 (X11; Linux x86_64) bench', '{"method":"password"}',
				       now() - make_interval(secs => g)
				FROM generate_series(1, $2) g`,
				`INSERT INTO auth.login_attempts (email, ip_address, user_agent, successful, method, attempted_at)
				SELECT 'bench@example.test', '203.0.113.7', 'Mozilla/5.0 (X11; Linux x86_64) bench', true, 'password',
				       (SELECT created_at FROM auth.users WHERE id = $1) + make_interval(secs => g)
				FROM generate_series(1, 100) g WHERE $2::int > 0`} {
				_, err := db.Owner.Exec(ctx, sql, user, n)
				require.NoError(b, err)
			}
			_, err := db.Owner.Exec(ctx, `ANALYZE auth.security_events, auth.login_attempts`)
			require.NoError(b, err)
			events, err := lockout.NewEvents(lockout.EventsConfig{Pool: db.Runtime})
			require.NoError(b, err)
			gate, err := lockout.New(lockout.Config{Pool: db.Runtime, Events: events})
			require.NoError(b, err)
			svc, err := gdpr.New(gdpr.Config{Pool: db.Runtime, Users: users{}, Addresses: gate, Exporters: []gdpr.Exporter{gate},
				Exported: func(context.Context, uuid.UUID, gdpr.Client) error { return nil }})
			require.NoError(b, err)
			b.ReportAllocs()
			var rows int64
			for b.Loop() {
				st, err := svc.Export(ctx, user, gdpr.Client{}, func(time.Time) io.Writer { return io.Discard })
				if err != nil {
					b.Fatal(err)
				}
				rows = st.Rows
			}
			if rows != int64(n+100+1) {
				b.Fatalf("exported %d rows, want %d", rows, n+100+1)
			}
		})
	}
}
