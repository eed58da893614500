package argon2

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
)

// dirtyMemory is a Memory holding the blocks of another computation, as a
// reused one does: the upstream vectors then only pass when no old block
// is read (see the first-pass change in processBlocks — with upstream's
// XOR in every pass these tests fail).
func dirtyMemory() *Memory {
	m := &Memory{}
	m.IDKey([]byte("an earlier password"), []byte("an earlier salt!"), 1, 8192, 1, 32)
	return m
}

// TestIDKeyMatchesUpstream compares every result with
// golang.org/x/crypto/argon2.IDKey while one Memory is reused across
// growing and shrinking sizes, lane counts and passes.
func TestIDKeyMatchesUpstream(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var m Memory
	for i := range 60 {
		time := 1 + r.Uint32N(3)
		memory := 8 + r.Uint32N(2048)
		threads := uint8(1 + r.UintN(4))
		keyLen := 4 + r.Uint32N(64)
		password := make([]byte, r.IntN(40))
		salt := make([]byte, 8+r.IntN(24))
		for _, b := range [][]byte{password, salt} {
			for j := range b {
				b[j] = byte(r.UintN(256))
			}
		}
		want := xargon2.IDKey(password, salt, time, memory, threads, keyLen)
		if got := m.IDKey(password, salt, time, memory, threads, keyLen); !bytes.Equal(got, want) {
			t.Fatalf("case %d (t=%d m=%d p=%d len=%d): got %x, want %x", i, time, memory, threads, keyLen, got, want)
		}
	}
}

// TestIDKeyReusesMemory: once m holds enough, a computation allocates
// nothing near its working memory; a larger one grows m.
func TestIDKeyReusesMemory(t *testing.T) {
	const kib = 4096
	var m Memory
	m.IDKey([]byte("p"), []byte("saltsalt"), 1, kib, 1, 32)
	if m.Size() != kib {
		t.Fatalf("Size = %d KiB, want %d", m.Size(), kib)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 5 {
		m.IDKey([]byte("p"), []byte("saltsalt"), 1, kib, 1, 32)
		m.IDKey([]byte("p"), []byte("saltsalt"), 1, kib/2, 1, 32)
	}
	runtime.ReadMemStats(&after)
	// Without the reuse each call allocates its working memory: 10 calls,
	// 30 MiB or more.
	if got := after.TotalAlloc - before.TotalAlloc; got > kib<<10/4 {
		t.Fatalf("10 computations in a held Memory allocated %d bytes", got)
	}
	m.IDKey([]byte("p"), []byte("saltsalt"), 1, 2*kib, 1, 32)
	if m.Size() != 2*kib {
		t.Fatalf("Size after a larger computation = %d KiB, want %d", m.Size(), 2*kib)
	}
}

// FuzzIDKeyMatchesUpstream: any input, computed in a dirty reused Memory,
// gives upstream's key.
func FuzzIDKeyMatchesUpstream(f *testing.F) {
	f.Add([]byte("password"), []byte("somesalt"), uint8(1), uint16(64), uint8(1))
	f.Add([]byte(""), []byte("saltsaltsalt"), uint8(3), uint16(256), uint8(2))
	m := dirtyMemory()
	f.Fuzz(func(t *testing.T, password, salt []byte, time uint8, memory uint16, threads uint8) {
		tm := 1 + uint32(time%3)
		mem := 8 + uint32(memory%1024)
		th := 1 + threads%4
		want := xargon2.IDKey(password, salt, tm, mem, th, 32)
		if got := m.IDKey(password, salt, tm, mem, th, 32); !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d: got %x, want %x", tm, mem, th, got, want)
		}
	})
}

func ExampleMemory() {
	var m Memory // one per concurrent computation, kept between them
	for _, pw := range []string{"first", "second"} {
		key := m.IDKey([]byte(pw), []byte("a random salt..."), 2, 19*1024, 1, 32)
		fmt.Println(len(key), m.Size())
	}
	// Output:
	// 32 19456
	// 32 19456
}
