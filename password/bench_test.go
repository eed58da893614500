package password

import (
	"runtime"
	"testing"
)

// BenchmarkPasswordHash measures one argon2id hash with the default parameters
// (m=19 MiB, t=2, p=1): the cost every register, change and reset pays.
func BenchmarkPasswordHash(b *testing.B) {
	h := pwTestHasher(b, HasherConfig{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasswordVerify measures one verification with the default parameters:
// the cost every login pays (DummyVerify costs the same).
func BenchmarkPasswordVerify(b *testing.B) {
	h := pwTestHasher(b, HasherConfig{})
	phc, err := h.Hash(b.Context(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ok, _, err := h.Verify(b.Context(), "correct horse battery staple", phc)
		if err != nil || !ok {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}

// BenchmarkPasswordPolicyCheck measures the policy on an accepted password
// (every rule runs, including the common-list lookup).
func BenchmarkPasswordPolicyCheck(b *testing.B) {
	p := Policy{}
	_ = pwCommonList() // build the list outside the timed loop
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Check("Zq8!vR2k-long-enough", "alice@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasswordVerifyParallel measures verifications from 8 callers
// at once with the default parameters and hasher bounds: the sign-in
// throughput the cores allow (ns/op is per verification, all cores busy).
func BenchmarkPasswordVerifyParallel(b *testing.B) {
	h := pwTestHasher(b, HasherConfig{})
	phc, err := h.Hash(b.Context(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8 / max(1, runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ok, _, err := h.Verify(b.Context(), "correct horse battery staple", phc)
			if err != nil || !ok {
				b.Errorf("Verify = %v, %v", ok, err)
				return
			}
		}
	})
}
