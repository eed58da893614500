package apikey_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/apikey"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
)

// BenchmarkValidate is one validation against PostgreSQL: "warm" is
// answered from the cache (no statement), "cold" without a cache (the
// lookup by hash every time), each serially and in parallel. Every call
// also records the use in memory (no write).
func BenchmarkValidate(b *testing.B) {
	db := testutil.DB(b)
	ctx := context.Background()
	userID := uuid.New()
	_, err := db.Owner.Exec(ctx, `INSERT INTO auth.users (id, email) VALUES ($1, 'bench@example.test')`, userID)
	require.NoError(b, err)
	events, err := lockout.NewEvents(lockout.EventsConfig{Pool: db.Runtime})
	require.NoError(b, err)
	for _, c := range []struct {
		name string
		ttl  time.Duration
	}{{"warm", 5 * time.Second}, {"cold", -1}} {
		svc, err := apikey.New(apikey.Config{Pool: db.Runtime, Events: events, CacheTTL: c.ttl,
			LastUsedInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(b, err)
		created, err := svc.Create(ctx, userID, apikey.CreateInput{Name: c.name, Scopes: []string{"read"}}, apikey.Client{})
		require.NoError(b, err)
		key := created.Key
		check := func(b *testing.B) {
			v, err := svc.Validate(ctx, key, "read")
			if err != nil || !v.Valid {
				b.Fatalf("validate: %+v %v", v, err)
			}
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				check(b)
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					check(b)
				}
			})
		})
		require.NoError(b, svc.Close())
	}
}
