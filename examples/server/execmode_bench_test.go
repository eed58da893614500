package main

import (
	"context"
	"log/slog"
	"net/url"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
)

// BenchmarkRuntimeExecMode measures what the runtime pool's query exec
// mode (runtimeExecMode, or default_query_exec_mode in DATABASE_URL) costs
// on the hot paths, directly and through a PgBouncer in transaction mode:
//
//   - refresh: one refresh-token rotation (a transaction of three
//     statements, then two reads), manaauth.Service.Refresh;
//   - session: the live-session check of the routes that guard secrets
//     (one SELECT), manaauth.Service.SessionActive;
//   - gate: a wrong password's passage through the lockout gate without
//     the hash (the admission statement, then the failure's transaction).
//
// cache_statement is pgx's default and the fastest directly; it does not
// work through PgBouncer in transaction mode, so it is measured directly
// only. docs/deploy.md quotes the figures.
//
//	go test -run '^$' -bench RuntimeExecMode -benchtime 2s ./examples/server/
func BenchmarkRuntimeExecMode(b *testing.B) {
	db := testutil.DB(b)
	bouncer := testutil.PgBouncer(b, db, testutil.BouncerOptions{PoolSize: 4})
	for _, via := range []struct{ name, url string }{{"direct", db.RuntimeURL}, {"pgbouncer", bouncer.RuntimeURL}} {
		for _, mode := range []string{"cache_statement", "cache_describe", "exec"} {
			if via.name == "pgbouncer" && mode == "cache_statement" {
				continue
			}
			b.Run(via.name+"/"+mode, func(b *testing.B) { benchExecMode(b, withExecMode(b, via.url, mode)) })
		}
	}
}

func withExecMode(b *testing.B, dbURL, mode string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("default_query_exec_mode", mode)
	u.RawQuery = q.Encode()
	return u.String()
}

func benchExecMode(b *testing.B, dbURL string) {
	ctx := context.Background()
	poolCfg, err := runtimePoolConfig(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	cfg, err := LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": b.TempDir(),
		"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION": "false", "MANA_AUTH_ARGON2ID": "m=64,t=1,p=1"}))
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	auth, err := newAuthStack(ctx, cfg, pool, prometheus.NewRegistry(), logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := auth.Close(); err != nil {
			b.Error(err)
		}
	})
	reg, err := auth.svc.Register(ctx, manaauth.RegisterInput{Email: "bench-" + uuid.NewString() + "@example.test",
		Password: "violet-harbor-lantern-58"}, manaauth.Client{})
	if err != nil {
		b.Fatal(err)
	}
	pair := reg.Tokens

	b.Run("refresh", func(b *testing.B) {
		for b.Loop() {
			if pair, err = auth.svc.Refresh(ctx, pair.RefreshToken, manaauth.Client{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session", func(b *testing.B) {
		for b.Loop() {
			if live, err := auth.svc.SessionActive(ctx, pair.SessionID); err != nil || !live {
				b.Fatalf("live %v, err %v", live, err)
			}
		}
	})
	wrong := autherr.New(autherr.InvalidCredentials, "invalid email or password")
	gate := auth.svc.Gate()
	b.Run("gate", func(b *testing.B) {
		for b.Loop() {
			t, err := gate.Begin(ctx, lockout.Attempt{Email: uuid.NewString() + "@example.test", Method: lockout.Password})
			if err != nil {
				b.Fatal(err)
			}
			if err := t.Finish(ctx, uuid.Nil, wrong); err != nil {
				b.Fatal(err)
			}
		}
	})
}
