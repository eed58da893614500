package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// BenchmarkVerify is token validation as the middleware does it: no
// database, one Ed25519 verification plus parsing.
func BenchmarkVerify(b *testing.B) {
	tk := tokNew(b, tokNewClock(), nil)
	token, _, err := tk.Issue(uuid.New(), "alice@example.test", uuid.New())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel is Verify under concurrency (GOMAXPROCS
// goroutines), the shape of a busy API server.
func BenchmarkVerifyParallel(b *testing.B) {
	tk := tokNew(b, tokNewClock(), nil)
	token, _, err := tk.Issue(uuid.New(), "alice@example.test", uuid.New())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tk.Verify(token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyJunk is the cost of refusing a 100 KB hostile header.
func BenchmarkVerifyJunk(b *testing.B) {
	tk := tokNew(b, tokNewClock(), nil)
	junk := string(make([]byte, 100_000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Verify(junk); err == nil {
			b.Fatal("junk verified")
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	tk := tokNew(b, tokNewClock(), nil)
	user, session := uuid.New(), uuid.New()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tk.Issue(user, "alice@example.test", session); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMiddleware is one authenticated request through the
// middleware to a no-op handler.
func BenchmarkMiddleware(b *testing.B) {
	tk := tokNew(b, tokNewClock(), nil)
	token, _, err := tk.Issue(uuid.New(), "alice@example.test", uuid.New())
	if err != nil {
		b.Fatal(err)
	}
	h := Middleware(tk)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ClaimsFromContext(r.Context()); !ok {
			b.Error("no claims")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest(http.MethodGet, "/api/v1/me/profile", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkVerifyBareEd25519 is the floor under BenchmarkVerify: one
// crypto/ed25519 verification of the same token's signature, no parsing.
func BenchmarkVerifyBareEd25519(b *testing.B) {
	key := tokTestKey(b, 1)
	tk := tokNew(b, tokNewClock(), nil)
	token, _, err := tk.Issue(uuid.New(), "alice@example.test", uuid.New())
	if err != nil {
		b.Fatal(err)
	}
	dot := strings.LastIndexByte(token, '.')
	msg := []byte(token[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := tokPub(key)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("signature does not verify")
		}
	}
}
