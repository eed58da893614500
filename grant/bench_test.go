package grant_test

import (
	"context"
	"testing"
	"time"

	"github.com/mana-how/mana-auth/grant"
)

// BenchmarkIssue: HKDF + RSA-OAEP encrypt + Ed25519 sign, with the
// recommended 3072-bit key (the master key read is an in-memory map).
func BenchmarkIssue(b *testing.B) {
	f := newFixture(b, fixtureOpts{rsaKey: "rsa3072.pem"})
	req := grant.Request{UserID: f.user, MissionID: "mission-42", TTL: time.Hour}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.issuer.Issue(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkUnwrap: Ed25519 verify + RSA-OAEP decrypt with a 3072-bit key.
func BenchmarkUnwrap(b *testing.B) {
	f := newFixture(b, fixtureOpts{rsaKey: "rsa3072.pem"})
	g := f.issue(b, "mission-42", time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		key, err := f.unwrapper.Unwrap(ctx, g)
		if err != nil {
			b.Fatal(err)
		}
		clear(key)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkUnwrapRejected: a decryption failure costs what a success
// costs (one RSA operation), a bad signature far less.
func BenchmarkUnwrapRejected(b *testing.B) {
	f := newFixture(b, fixtureOpts{rsaKey: "rsa3072.pem"})
	for _, tc := range []struct {
		name string
		edit func(g *grant.Grant)
	}{
		{"truncated ciphertext", func(g *grant.Grant) { g.WrappedKey = g.WrappedKey[:len(g.WrappedKey)-8]; f.resign(g) }},
		{"wrong ciphertext", func(g *grant.Grant) { g.WrappedKey = "AAAA" + g.WrappedKey[4:]; f.resign(g) }},
		{"bad signature", func(g *grant.Grant) { g.WrappedKey = "AAAA" + g.WrappedKey[4:] }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			g := f.issue(b, "mission-42", time.Hour)
			tc.edit(g)
			ctx := context.Background()
			for b.Loop() {
				if _, err := f.unwrapper.Unwrap(ctx, g); err == nil {
					b.Fatal("unwrapped")
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
