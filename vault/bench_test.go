package vault_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/vault"
)

func BenchmarkWrap(b *testing.B) {
	kr := ring(b, "1:"+b64(keyOf(1)))
	user, mk := uuid.New(), keyOf(3)
	for b.Loop() {
		if _, err := vault.Wrap(context.Background(), kr, user, mk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrap(b *testing.B) {
	kr := ring(b, "1:"+b64(keyOf(1)))
	user := uuid.New()
	w, err := vault.Wrap(context.Background(), kr, user, keyOf(3))
	require.NoError(b, err)
	for b.Loop() {
		if _, err := vault.Unwrap(context.Background(), kr, user, w); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetKey is GET /key end to end against PostgreSQL (a read and an
// audit row per request), in parallel; see the req/s metric.
func BenchmarkGetKey(b *testing.B) {
	db := testutil.DB(b)
	h := newHarness(b, db.Runtime, db)
	u := newUser(b, db)
	_, err := h.svc.Init(context.Background(), u, vault.Client{})
	require.NoError(b, err)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "/key", nil)
			req.Header.Set(userHeader, u.String())
			rec := httptest.NewRecorder()
			h.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
