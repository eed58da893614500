package manaauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/password"
)

// The login benchmarks answer one question: how much does everything around
// the password hash (decode, lockout gate, user lookup, session, refresh
// token, JWT, encode) add to a login? BenchmarkLoginHandler is a full
// successful login through the handler with the production argon2id
// parameters; BenchmarkArgon2idBare is the Verify alone with the same
// parameters. The target is login ≥ 95 % of the bare throughput (≤ 5 %
// overhead): ns/op of Argon2idBare divided by ns/op of LoginHandler.
// A regression that adds a second hash (a rehash on every login, a
// DummyVerify on the success path) halves the ratio.

// BenchmarkLoginHandler: sequential successful logins of one verified user
// through manaauth.NewHandler (no network), DEFAULT argon2id parameters.
func BenchmarkLoginHandler(b *testing.B) {
	f := newFixture(b, fixtureOptions{params: sessDefaultParams, requireVerification: true})
	const email = "bench-login@example.com"
	sessSeedUsers(b, f, sessDefaultParams, sessPassword, email)
	h := manaauth.NewHandler(f.svc, manaauth.HandlerOptions{})
	body, err := json.Marshal(map[string]string{"email": email, "password": sessPassword})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/login", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("login answered %d %s", rec.Code, rec.Body.Bytes())
		}
	}
}

// BenchmarkArgon2idBare: manaauth.Hasher.Verify alone, same parameters,
// same password: the floor of BenchmarkLoginHandler.
func BenchmarkArgon2idBare(b *testing.B) {
	h, err := password.NewHasher(password.HasherConfig{Params: sessDefaultParams})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	phc, err := h.Hash(ctx, sessPassword)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ok, rehash, err := h.Verify(ctx, sessPassword, phc)
		if err != nil || !ok || rehash {
			b.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
		}
	}
}

// BenchmarkLoginVsArgon2id runs one bare Verify and one handler login per
// op, alternately, and reports the mean of each and the ratio of their
// throughputs (login-%-of-bare). Measured side by side, the ratio holds on
// a shared or loaded machine, where the two separate benchmarks above run
// minutes apart under different load.
func BenchmarkLoginVsArgon2id(b *testing.B) {
	f := newFixture(b, fixtureOptions{params: sessDefaultParams, requireVerification: true})
	const email = "bench-ratio@example.com"
	sessSeedUsers(b, f, sessDefaultParams, sessPassword, email)
	h := manaauth.NewHandler(f.svc, manaauth.HandlerOptions{})
	hasher, err := password.NewHasher(password.HasherConfig{Params: sessDefaultParams})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	phc, err := hasher.Hash(ctx, sessPassword)
	if err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(map[string]string{"email": email, "password": sessPassword})
	if err != nil {
		b.Fatal(err)
	}
	var login, bare time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		if ok, _, err := hasher.Verify(ctx, sessPassword, phc); err != nil || !ok {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
		mid := time.Now()
		req := httptest.NewRequest(http.MethodPost, "/login", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("login answered %d %s", rec.Code, rec.Body.Bytes())
		}
		bare += mid.Sub(start)
		login += time.Since(mid)
		n++
	}
	b.ReportMetric(float64(bare.Nanoseconds())/float64(n), "bare-ns/verify")
	b.ReportMetric(float64(login.Nanoseconds())/float64(n), "handler-ns/login")
	b.ReportMetric(100*float64(bare)/float64(login), "login-%-of-bare")
}

// BenchmarkRefresh: one refresh-token rotation per op (a conditional
// UPDATE, the child INSERT, the session touch, the user lookup, a signed
// JWT), each op presenting the token the previous one returned. "service"
// calls Service.Refresh; "handler" goes through the HTTP handler as well.
func BenchmarkRefresh(b *testing.B) {
	f := newFixture(b, fixtureOptions{})
	const email = "bench-refresh@example.com"
	sessSeedUsers(b, f, fastParams, sessPassword, email)
	ctx := context.Background()

	b.Run("service", func(b *testing.B) {
		res, err := f.svc.Login(ctx, email, sessPassword, manaauth.Client{})
		if err != nil {
			b.Fatal(err)
		}
		tok := res.Tokens.RefreshToken
		b.ReportAllocs()
		for b.Loop() {
			p, err := f.svc.Refresh(ctx, tok, manaauth.Client{})
			if err != nil {
				b.Fatal(err)
			}
			tok = p.RefreshToken
		}
	})

	b.Run("handler", func(b *testing.B) {
		res, err := f.svc.Login(ctx, email, sessPassword, manaauth.Client{})
		if err != nil {
			b.Fatal(err)
		}
		tok := res.Tokens.RefreshToken
		h := manaauth.NewHandler(f.svc, manaauth.HandlerOptions{})
		b.ReportAllocs()
		for b.Loop() {
			body, err := json.Marshal(map[string]string{"refreshToken": tok})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/refresh", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("refresh answered %d %s", rec.Code, rec.Body.Bytes())
			}
			var out struct {
				RefreshToken string `json:"refreshToken"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				b.Fatal(err)
			}
			tok = out.RefreshToken
		}
	})
}
