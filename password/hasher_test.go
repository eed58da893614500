package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/argon2"
)

// pwFastParams keep tests that are not about cost quick.
var pwFastParams = Params{Memory: 64, Time: 1, Threads: 1}

// pwRefVectors were made with the reference implementation
// (phc-winner-argon2's CLI, Debian package "argon2"), e.g.
//
//	echo -n "password" | argon2 somesalt -id -t 1 -k 19456 -p 1 -l 32 -e
var pwRefVectors = []struct {
	name, password, phc string
	params              Params
}{
	{
		name:     "m=1024,t=2",
		password: "correct horse battery staple",
		phc:      "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ",
		params:   Params{Memory: 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32},
	},
	{
		name:     "m=19456,t=1,8-byte salt",
		password: "password",
		phc:      "$argon2id$v=19$m=19456,t=1,p=1$c29tZXNhbHQ$6VtNI7xdxJQ3JkNYjE74nZ6q8eCJnfPlECjhzCq94Bk",
		params:   Params{Memory: 19456, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 32},
	},
	{
		name:     "defaults, non-ASCII",
		password: "pässwörd 🔑",
		phc:      "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$VYq8djPdSeAEzXaaS68utMCh0gjsI9VgfWrnAyaab94",
		params:   Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32},
	},
}

func pwTestHasher(tb testing.TB, cfg HasherConfig) *Hasher {
	tb.Helper()
	h, err := NewHasher(cfg)
	require.NoError(tb, err, "NewHasher(%+v)", cfg)
	return h
}

func TestHasherDefaults(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{})
	assert.Equal(t, Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, h.params)
	assert.Equal(t, runtime.GOMAXPROCS(0), cap(h.slots), "MaxConcurrent default")
	assert.Equal(t, 5*time.Second, h.maxWait, "MaxWait default")
	assert.Equal(t, time.Minute, h.keep, "KeepMemory default")

	phc, err := h.Hash(t.Context(), "a long and unusual passphrase")
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`), phc)
	assert.True(t, strings.HasPrefix(h.dummy, "$argon2id$v=19$m=19456,t=2,p=1$"), "dummy hash %q made with other params", h.dummy)

	ok, rehash, err := h.Verify(t.Context(), "a long and unusual passphrase", phc)
	require.NoError(t, err)
	assert.True(t, ok, "own hash does not verify")
	assert.False(t, rehash, "own hash wants a rehash")
}

func TestHasherPartialParamsTakeDefaults(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: Params{Memory: 46 * 1024, Time: 1}})
	assert.Equal(t, Params{Memory: 46 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, h.params)
}

type pwFailingReader struct{}

func (pwFailingReader) Read([]byte) (int, error) { return 0, errors.New("entropy gone") }

func TestHasherConfigInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  HasherConfig
	}{
		{"memory below 8 KiB", HasherConfig{Params: Params{Memory: 7}}},
		{"memory below 8*threads", HasherConfig{Params: Params{Memory: 31, Threads: 4}}},
		{"memory above 1 GiB", HasherConfig{Params: Params{Memory: 1<<20 + 1}}},
		{"time above bound", HasherConfig{Params: Params{Time: 65}}},
		{"salt too short", HasherConfig{Params: Params{SaltLen: 7}}},
		{"salt too long", HasherConfig{Params: Params{SaltLen: 65}}},
		{"key too short", HasherConfig{Params: Params{KeyLen: 15}}},
		{"key too long", HasherConfig{Params: Params{KeyLen: 129}}},
		{"negative MaxConcurrent", HasherConfig{Params: pwFastParams, MaxConcurrent: -1}},
		{"negative MaxWait", HasherConfig{Params: pwFastParams, MaxWait: -time.Second}},
		{"failing Rand", HasherConfig{Params: pwFastParams, Rand: pwFailingReader{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHasher(tc.cfg)
			assert.Error(t, err, "NewHasher(%+v)", tc.cfg)
			assert.Nil(t, h)
		})
	}
	// The boundaries themselves are accepted.
	for _, p := range []Params{
		{Memory: 8, Time: 1},
		{Memory: 32, Time: 1, Threads: 4},
		{Memory: 64, Time: 64, SaltLen: 8, KeyLen: 16},
		{Memory: 64, Time: 1, SaltLen: 64, KeyLen: 128},
	} {
		_, err := NewHasher(HasherConfig{Params: p})
		assert.NoError(t, err, "NewHasher(%+v)", p)
	}
}

func TestHasherRandFailureIsInternal(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams})
	h.rand = pwFailingReader{}
	phc, err := h.Hash(t.Context(), "whatever it is")
	assert.Empty(t, phc)
	var ae *autherr.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, autherr.Internal, ae.Code)
}

func TestHasherReferenceVectors(t *testing.T) {
	// h uses the defaults, so only the vector made with them needs no rehash.
	h := pwTestHasher(t, HasherConfig{})
	for _, v := range pwRefVectors {
		t.Run(v.name, func(t *testing.T) {
			parsed, err := pwParsePHC(v.phc)
			require.NoError(t, err)
			assert.Equal(t, v.params, parsed.params)
			assert.Equal(t, v.phc, pwEncodePHC(parsed.params, parsed.salt, parsed.key), "re-encoding")

			ok, rehash, err := h.Verify(t.Context(), v.password, v.phc)
			require.NoError(t, err)
			assert.True(t, ok, "reference hash of %q does not verify", v.password)
			assert.Equal(t, v.params != h.params, rehash, "needsRehash")

			ok, rehash, err = h.Verify(t.Context(), v.password+"x", v.phc)
			require.NoError(t, err)
			assert.False(t, ok, "wrong password verifies")
			assert.False(t, rehash, "needsRehash on a wrong password")
		})
	}
}

func TestHasherVerifyExactlyAsReceived(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams})
	const password = "Tr0ub4dor&3 é"
	phc, err := h.Hash(t.Context(), password)
	require.NoError(t, err)

	ok, _, err := h.Verify(t.Context(), password, phc)
	require.NoError(t, err)
	require.True(t, ok, "the password itself must verify, or the cases below prove nothing")

	for _, tc := range []struct{ name, attempt string }{
		{"trailing space", password + " "},
		{"leading space", " " + password},
		{"trailing newline", password + "\n"},
		{"other case", strings.ToUpper(password)},
		{"NFD instead of NFC", "Tr0ub4dor&3 e\u0301"},
		{"prefix", password[:len(password)-1]},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(t.Context(), tc.attempt, phc)
			require.NoError(t, err)
			assert.False(t, ok, "Verify(%q) of a hash of %q", tc.attempt, password)
			assert.False(t, rehash)
		})
	}

	// The stored string is not trimmed either: a damaged row is an error.
	for _, damaged := range []string{phc + " ", phc + "\n", " " + phc} {
		ok, _, err := h.Verify(t.Context(), password, damaged)
		var ae *autherr.Error
		require.ErrorAs(t, err, &ae, "Verify against %q", damaged)
		assert.Equal(t, autherr.Internal, ae.Code)
		assert.False(t, ok)
	}
}

func TestHasherSaltsDiffer(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams})
	a, err := h.Hash(t.Context(), "same password")
	require.NoError(t, err)
	b, err := h.Hash(t.Context(), "same password")
	require.NoError(t, err)
	assert.NotEqual(t, a, b, "two hashes of one password share salt and key")
}

func TestHasherNeedsRehashWhenParamsChange(t *testing.T) {
	old := pwTestHasher(t, HasherConfig{Params: Params{Memory: 64, Time: 1}})
	phc, err := old.Hash(t.Context(), "kept across upgrades")
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		params Params
		rehash bool
	}{
		{"same", Params{Memory: 64, Time: 1}, false},
		{"memory raised", Params{Memory: 128, Time: 1}, true},
		{"time raised", Params{Memory: 64, Time: 2}, true},
		{"threads raised", Params{Memory: 64, Time: 1, Threads: 2}, true},
		{"salt longer", Params{Memory: 64, Time: 1, SaltLen: 32}, true},
		{"key longer", Params{Memory: 64, Time: 1, KeyLen: 64}, true},
		{"memory lowered", Params{Memory: 32, Time: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := pwTestHasher(t, HasherConfig{Params: tc.params})
			ok, rehash, err := h.Verify(t.Context(), "kept across upgrades", phc)
			require.NoError(t, err)
			assert.True(t, ok, "old hash no longer verifies")
			assert.Equal(t, tc.rehash, rehash, "needsRehash")

			ok, rehash, err = h.Verify(t.Context(), "wrong", phc)
			require.NoError(t, err)
			assert.False(t, ok)
			assert.False(t, rehash, "needsRehash on a wrong password")
		})
	}
}

// pwMalformedPHC are stored hashes Verify must refuse as INTERNAL.
var pwMalformedPHC = []struct{ name, phc string }{
	{"empty", ""},
	{"dollar only", "$"},
	{"no leading dollar", "argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"argon2i", "$argon2i$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"argon2d", "$argon2d$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"ARGON2ID upper case", "$ARGON2ID$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
	{"scrypt", "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E"},
	{"plain text", "hunter2"},
	{"version 16", "$argon2id$v=16$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"version missing", "$argon2id$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"version leading zero", "$argon2id$v=019$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"params out of order", "$argon2id$v=19$t=2,m=1024,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"param missing", "$argon2id$v=19$m=1024,t=2$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"keyid param", "$argon2id$v=19$m=1024,t=2,p=1,keyid=AAAA$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"leading zero", "$argon2id$v=19$m=01024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"plus sign", "$argon2id$v=19$m=+1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"negative", "$argon2id$v=19$m=1024,t=-2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"space in params", "$argon2id$v=19$m=1024, t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"memory zero", "$argon2id$v=19$m=0,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"memory below 8*p", "$argon2id$v=19$m=31,t=2,p=4$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"memory 4 TiB", "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"memory overflows uint32", "$argon2id$v=19$m=9999999999,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"time zero", "$argon2id$v=19$m=1024,t=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"time huge", "$argon2id$v=19$m=1024,t=100000,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"threads zero", "$argon2id$v=19$m=1024,t=2,p=0$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"threads 256", "$argon2id$v=19$m=4096,t=2,p=256$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"salt padded", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA==$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"hash padded", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ="},
	{"url-safe alphabet", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY_00hXKlnXZ_-PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"newline inside base64", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNh\nbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"non-zero trailing bits", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdB$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"salt 4 bytes", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"salt empty", "$argon2id$v=19$m=1024,t=2,p=1$$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"},
	{"hash 8 bytes", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXI"},
	{"hash missing", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA"},
	{"extra field", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ$"},
	{"too long", "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + strings.Repeat("A", 600)},
}

func TestPHCParseRefusesMalformed(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams})
	for _, tc := range pwMalformedPHC {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pwParsePHC(tc.phc)
			require.Error(t, err, "pwParsePHC(%q)", tc.phc)

			ok, rehash, err := h.Verify(t.Context(), "correct horse battery staple", tc.phc)
			var ae *autherr.Error
			require.ErrorAs(t, err, &ae, "Verify against %q", tc.phc)
			assert.Equal(t, autherr.Internal, ae.Code, "a stored hash we cannot parse is not the user's fault")
			assert.False(t, autherr.CountsTowardLockout(err), "must not count toward lockout")
			assert.False(t, ok)
			assert.False(t, rehash)
		})
	}
}

func TestPHCErrorsDoNotQuoteSecrets(t *testing.T) {
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "RC5JY/00hXKlnXZ/+PCVcJg84nuCQwbjIQ3DVCTomOQ"
	for _, phc := range []string{
		"$argon2id$v=19$m=1024,t=2,p=1$" + salt + "$" + key + "=",
		"$argon2id$v=19$m=1024,t=2,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=0,t=2,p=1$" + salt + "$" + key,
		"$" + key + "$v=19",
	} {
		_, err := pwParsePHC(phc)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), salt[:8], "error for %q quotes the salt", phc)
		assert.NotContains(t, err.Error(), key[:8], "error for %q quotes the hash", phc)
	}
}

func TestHasherDummyVerify(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams})
	var calls atomic.Int32
	inner := h.derive
	h.derive = func(mem *argon2.Memory, password, salt []byte, p Params) []byte {
		calls.Add(1)
		assert.Equal(t, h.params.Memory, p.Memory, "dummy computed with other memory")
		assert.Equal(t, h.params.Time, p.Time, "dummy computed with other time")
		return inner(mem, password, salt, p)
	}
	require.NoError(t, h.DummyVerify(t.Context(), "anything"))
	require.NoError(t, h.DummyVerify(t.Context(), ""))
	assert.Equal(t, int32(2), calls.Load(), "DummyVerify must run one argon2id computation per call")
}

func pwMedian(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// pwInstrument wraps h's key derivation to record the peak number of
// computations running at once; each sleeps hold before computing, so
// concurrent calls overlap visibly.
func pwInstrument(h *Hasher, hold time.Duration) (peak *atomic.Int32) {
	var running atomic.Int32
	peak = new(atomic.Int32)
	inner := h.derive
	h.derive = func(mem *argon2.Memory, password, salt []byte, p Params) []byte {
		n := running.Add(1)
		defer running.Add(-1)
		for old := peak.Load(); n > old && !peak.CompareAndSwap(old, n); old = peak.Load() {
		}
		time.Sleep(hold)
		return inner(mem, password, salt, p)
	}
	return peak
}

// pwFlood runs n Hash calls released together and sorts the outcomes.
func pwFlood(t *testing.T, h *Hasher, n int) (ok, busy int) {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = h.Hash(context.Background(), "flood password")
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		var ae *autherr.Error
		if assert.ErrorAs(t, err, &ae, "call %d", i) && assert.Equal(t, autherr.ServiceUnavailable, ae.Code, "call %d: %v", i, err) {
			assert.Equal(t, 1, ae.RemainingSeconds, "call %d: Retry-After", i)
			assert.True(t, autherr.IsUnavailable(err), "call %d: classifies as 503", i)
			assert.False(t, autherr.CountsTowardLockout(err), "call %d: counts toward lockout", i)
			busy++
		}
	}
	return ok, busy
}

// pwWiden gives h n slots, past the cores NewHasher allows, for the
// control runs that show a measurement can fail.
func pwWiden(h *Hasher, n int) {
	h.slots = make(chan *pwSlot, n)
	for range n {
		h.slots <- &pwSlot{}
	}
}

func TestHasherSemaphoreBoundsConcurrency(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams, MaxConcurrent: 2, MaxWait: 20 * time.Millisecond})
	peak := pwInstrument(h, 100*time.Millisecond)
	ok, busy := pwFlood(t, h, 200)
	t.Logf("200 calls, MaxConcurrent 2: %d hashed, %d SERVICE_UNAVAILABLE, peak %d running", ok, busy, peak.Load())
	assert.Equal(t, 200, ok+busy, "every call either hashes or is refused with SERVICE_UNAVAILABLE")
	assert.LessOrEqual(t, peak.Load(), int32(2), "more computations ran at once than MaxConcurrent")
	assert.GreaterOrEqual(t, ok, 2, "the slots that were free must be used")
	assert.Greater(t, busy, 100, "the overflow must be refused, not queued")

	// The instrument can see more than two at once when the bound allows
	// it, so the assertion above is not vacuous.
	wide := pwTestHasher(t, HasherConfig{Params: pwFastParams, MaxQueue: 100, MaxWait: 10 * time.Second})
	pwWiden(wide, 10)
	widePeak := pwInstrument(wide, 100*time.Millisecond)
	ok, busy = pwFlood(t, wide, 20)
	assert.Equal(t, 20, ok)
	assert.Zero(t, busy)
	assert.Greater(t, widePeak.Load(), int32(2), "with MaxConcurrent 10 the instrument saw at most 2 at once")
	assert.LessOrEqual(t, widePeak.Load(), int32(10))
}

// TestHasherMemoryFlatUnderFlood hashes with the default 19 MiB parameters
// from 20 goroutines at once and samples the heap: bounded to 2 at a time
// the peak stays near 2*19 MiB plus the garbage the GC lets accumulate
// (with GOGC=100 up to about as much again), while unbounded it grows
// toward 20*19 MiB — the second half shows the measurement can fail.
func TestHasherMemoryFlatUnderFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates hundreds of MiB for the unbounded control run; skipped with -short")
	}
	const n = 20
	const perHash = 19 << 20
	measure := func(maxConcurrent int) uint64 {
		h := pwTestHasher(t, HasherConfig{MaxQueue: n, MaxWait: time.Minute})
		pwWiden(h, maxConcurrent)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		var peak atomic.Uint64
		done := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
					peak.Store(ms.HeapAlloc - base)
				}
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		ok, busy := pwFlood(t, h, n)
		close(done)
		<-sampled
		require.Equal(t, n, ok, "all calls must hash (MaxWait is long)")
		require.Zero(t, busy)
		return peak.Load()
	}
	bounded := measure(2)
	unbounded := measure(n)
	t.Logf("peak heap growth: MaxConcurrent 2: %d MiB; MaxConcurrent %d: %d MiB", bounded>>20, n, unbounded>>20)
	assert.Less(t, bounded, uint64(10*perHash), "heap grew past 10 hashes' worth with MaxConcurrent 2")
	assert.Greater(t, unbounded, uint64(10*perHash), "control: without the bound the heap should grow past 10 hashes' worth")
}

func TestHasherHonoursContext(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams, MaxConcurrent: 1, MaxWait: time.Minute})
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	inner := h.derive
	h.derive = func(mem *argon2.Memory, password, salt []byte, p Params) []byte {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		return inner(mem, password, salt, p)
	}
	holder := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "holds the only slot")
		holder <- err
	}()
	<-entered

	// Waiting for the slot ends when ctx does, long before MaxWait.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := h.Hash(ctx, "waits")
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, autherr.IsUnavailable(err), "a canceled wait classifies as 503, not as the user's fault")

	ctx, cancel = context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, _, err = h.Verify(ctx, "waits", h.dummy)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	close(release)
	require.NoError(t, <-holder)

	// An ended context is refused before any work, even with a free slot.
	done, cancelDone := context.WithCancel(t.Context())
	cancelDone()
	_, err = h.Hash(done, "x")
	require.ErrorIs(t, err, context.Canceled)
	_, _, err = h.Verify(done, "x", h.dummy)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, h.DummyVerify(done, "x"), context.Canceled)
	assert.Equal(t, int32(1), calls.Load(), "argon2id ran for a call whose context had ended")
}

func TestHasherBusyAnswer(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams, MaxConcurrent: 1, MaxWait: 30 * time.Millisecond})
	slot := <-h.slots // the only slot is taken
	t.Cleanup(func() { h.slots <- slot })

	_, err := h.Hash(t.Context(), "x")
	pwRequireBusy(t, err)
	_, _, err = h.Verify(t.Context(), "x", h.dummy)
	pwRequireBusy(t, err)
	pwRequireBusy(t, h.DummyVerify(t.Context(), "x"))
}

func pwRequireBusy(t *testing.T, err error) {
	t.Helper()
	var ae *autherr.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, autherr.ServiceUnavailable, ae.Code)
	assert.Equal(t, 1, ae.RemainingSeconds)
	assert.Equal(t, 503, autherr.Classify(err).Status())
}

// FuzzParsePHC checks that parsing arbitrary stored strings never panics,
// and that whatever it accepts is within the bounds and re-encodes to
// exactly the input (so nothing is silently repaired or ignored).
func FuzzParsePHC(f *testing.F) {
	for _, v := range pwRefVectors {
		f.Add(v.phc)
	}
	for _, m := range pwMalformedPHC {
		f.Add(m.phc)
	}
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		parsed, err := pwParsePHC(s)
		if err != nil {
			return
		}
		if err := parsed.params.pwValidate(); err != nil {
			t.Fatalf("accepted %q with invalid params: %v", s, err)
		}
		if got := pwEncodePHC(parsed.params, parsed.salt, parsed.key); got != s {
			t.Fatalf("accepted %q, re-encodes to %q", s, got)
		}
		if int(parsed.params.SaltLen) != len(parsed.salt) || int(parsed.params.KeyLen) != len(parsed.key) {
			t.Fatalf("accepted %q with lengths %+v, salt %d, key %d", s, parsed.params, len(parsed.salt), len(parsed.key))
		}
	})
}

// pwHold makes h's next computation block until the returned release is
// called; entered is closed when it has started (holding its slot).
func pwHold(h *Hasher) (entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	inner := h.derive
	h.derive = func(mem *argon2.Memory, password, salt []byte, p Params) []byte {
		if first.CompareAndSwap(false, true) {
			close(in)
			<-out
		}
		return inner(mem, password, salt, p)
	}
	return in, sync.OnceFunc(func() { close(out) })
}

// pwAwait waits until cond holds. It asserts nothing about time: the
// conditions it waits for follow from the calls the test made, and a test
// whose condition never comes ends at go test's -timeout.
func pwAwait(cond func() bool) {
	for !cond() {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// TestHasherQueueIsBoundedAndShedsBeyond: with the one slot held and
// MaxQueue callers waiting, the next Hash, Verify and DummyVerify are
// refused at once — counted as shed, not as a wait that timed out (MaxWait
// is a minute, so a call that queued instead would be counted as timed out
// a minute later, and this test would fail). The refusal is
// SERVICE_UNAVAILABLE with Retry-After 1, which never counts toward a
// lockout. When the slot frees, the queued callers all hash.
func TestHasherQueueIsBoundedAndShedsBeyond(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams, MaxConcurrent: 1, MaxQueue: 2, MaxWait: time.Minute})
	entered, release := pwHold(h)
	t.Cleanup(release)
	errs := make(chan error, 3)
	go func() {
		_, err := h.Hash(context.Background(), "holds the only slot")
		errs <- err
	}()
	<-entered
	for range 2 {
		go func() {
			_, _, err := h.Verify(context.Background(), "queued", h.dummy)
			errs <- err
		}()
	}
	pwAwait(func() bool { return h.Stats().Waiting == 2 })

	_, err := h.Hash(t.Context(), "one too many")
	pwRequireBusy(t, err)
	assert.False(t, autherr.CountsTowardLockout(err), "a shed call must not count toward the lockout")
	assert.Equal(t, autherr.ServiceUnavailable, autherr.Classify(err).Code)
	_, _, err = h.Verify(t.Context(), "one too many", h.dummy)
	pwRequireBusy(t, err)
	// The timing equalisation holds under shedding too: the dummy branch
	// is refused exactly like a real verification.
	pwRequireBusy(t, h.DummyVerify(t.Context(), "one too many"))
	st := h.Stats()
	// Computed 1: the dummy hash NewHasher made; the shed calls computed nothing.
	assert.Equal(t, HasherStats{MaxConcurrent: 1, MaxQueue: 2, Running: 1, Waiting: 2, Shed: 3, Computed: 1}, st)

	release()
	for range 3 {
		require.NoError(t, <-errs, "the holder and the queued callers hash once the slot frees")
	}
	assert.Equal(t, HasherStats{MaxConcurrent: 1, MaxQueue: 2, Shed: 3, Computed: 4}, h.Stats(), "the holder and the two queued computed")
}

// TestHasherWithoutQueueShedsAtOnce: a negative MaxQueue sheds whenever
// every slot is busy.
func TestHasherWithoutQueueShedsAtOnce(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: pwFastParams, MaxConcurrent: 1, MaxQueue: -1, MaxWait: time.Minute})
	slot := <-h.slots
	_, err := h.Hash(t.Context(), "x")
	pwRequireBusy(t, err)
	h.slots <- slot
	assert.Equal(t, HasherStats{MaxConcurrent: 1, MaxQueue: 0, Shed: 1, Computed: 1}, h.Stats(), "only NewHasher's dummy hash")
	_, err = h.Hash(t.Context(), "x")
	require.NoError(t, err, "with the slot free the call hashes")
}

// TestHasherBoundsAreTheCores: MaxConcurrent defaults to and never
// exceeds the cores (GOMAXPROCS, divided by the lanes of one
// computation); MaxQueue defaults to four per slot.
func TestHasherBoundsAreTheCores(t *testing.T) {
	cores := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		name      string
		cfg       HasherConfig
		slots, mq int
	}{
		{"defaults", HasherConfig{Params: pwFastParams}, cores, 4 * cores},
		{"above the cores", HasherConfig{Params: pwFastParams, MaxConcurrent: 64 * cores}, cores, 4 * cores},
		{"below the cores", HasherConfig{Params: pwFastParams, MaxConcurrent: 1, MaxQueue: 7}, 1, 7},
		{"two lanes each", HasherConfig{Params: Params{Memory: 64, Time: 1, Threads: 2}}, max(1, cores/2), 4 * max(1, cores/2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := pwTestHasher(t, tc.cfg).Stats()
			assert.Equal(t, tc.slots, st.MaxConcurrent, "MaxConcurrent")
			assert.Equal(t, tc.mq, st.MaxQueue, "MaxQueue")
		})
	}
}

// TestHasherReusesWorkingMemory: each slot keeps its argon2id memory, so
// a verification allocates a few hundred bytes, not the 19 MiB of its
// parameters (before the reuse, ten verifications allocated 190 MiB). A
// stored hash made with more memory than the hasher's gets memory of its
// own, and the slot does not keep it.
func TestHasherReusesWorkingMemory(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{MaxConcurrent: 1})
	phc, err := h.Hash(t.Context(), "correct horse battery staple")
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		ok, _, err := h.Verify(t.Context(), "correct horse battery staple", phc)
		require.NoError(t, err)
		require.True(t, ok)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("10 verifications with m=19 MiB allocated %d bytes", allocated)
	assert.Less(t, allocated, uint64(1<<20), "verifications allocate their working memory")

	big, err := NewHasher(HasherConfig{Params: Params{Memory: 1024, Time: 1}})
	require.NoError(t, err)
	bigPHC, err := big.Hash(t.Context(), "made with more memory")
	require.NoError(t, err)
	small := pwTestHasher(t, HasherConfig{Params: Params{Memory: 256, Time: 1}, MaxConcurrent: 1})
	_, err = small.Hash(t.Context(), "gives the slot its own memory")
	require.NoError(t, err)
	ok, rehash, err := small.Verify(t.Context(), "made with more memory", bigPHC)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, rehash)
	slot := <-small.slots
	assert.Equal(t, uint32(256), slot.mem.Size(), "the slot keeps only the hasher's own memory")
	small.slots <- slot
}

// TestHasherIdleHoldsNoWorkingMemory: NewHasher computes the dummy hash
// outside the slots, so a hasher that has not yet hashed or verified holds
// no working memory — an idle server does not keep 19 MiB from its
// start-up. Computing the dummy in a real slot (as before) fails this with
// the slot holding Params.Memory.
func TestHasherIdleHoldsNoWorkingMemory(t *testing.T) {
	h := pwTestHasher(t, HasherConfig{Params: Params{Memory: 1024, Time: 1}, MaxConcurrent: 2})
	held := make([]*pwSlot, 0, cap(h.slots))
	for range cap(h.slots) {
		s := <-h.slots
		held = append(held, s)
		assert.Zero(t, s.mem.Size(), "a slot holds working memory before any computation")
	}
	for _, s := range held {
		h.slots <- s
	}
	require.NoError(t, h.DummyVerify(t.Context(), "anything"), "the dummy hash is usable")
}

// TestHasherWorkingMemory: the memory a hasher keeps is one Params.Memory
// per slot, as HasherConfig.WorkingMemory says, and no more once every
// slot has computed.
func TestHasherWorkingMemory(t *testing.T) {
	cores := runtime.GOMAXPROCS(0)
	assert.Equal(t, int64(cores)*19<<20, HasherConfig{}.WorkingMemory())
	assert.Equal(t, int64(1)*64<<10, HasherConfig{Params: pwFastParams, MaxConcurrent: 1}.WorkingMemory())
	assert.Zero(t, HasherConfig{Params: Params{Memory: 7}}.WorkingMemory(), "refused configuration")

	cfg := HasherConfig{Params: Params{Memory: 1024, Time: 1}, MaxConcurrent: 2}
	h := pwTestHasher(t, cfg)
	pwFlood(t, h, 8)
	var held int64
	for range cap(h.slots) {
		s := <-h.slots
		held += int64(s.mem.Size()) << 10
		defer func() { h.slots <- s }()
	}
	assert.LessOrEqual(t, held, cfg.WorkingMemory())
}

// pwHeld is the working memory, in KiB, the slots of h hold now. It locks
// each slot as a computation does, so it waits for running ones.
func pwHeld(h *Hasher) uint32 {
	var held uint32
	for _, s := range h.all {
		s.mu.Lock()
		held += s.mem.Size()
		s.mu.Unlock()
	}
	return held
}

// TestHasherDropsMemoryWhenIdle: after KeepMemory without computations the
// slots drop their working memory (an idle server holds no argon2id
// blocks), the next computation allocates its block again, and a negative
// KeepMemory keeps the blocks. Without the drop the first check fails with
// both slots still holding 1024 KiB; a drop that took a slot in use would
// be reported by -race (the flood runs with a 1 ms KeepMemory).
func TestHasherDropsMemoryWhenIdle(t *testing.T) {
	t.Parallel()
	params := Params{Memory: 1024, Time: 1}
	h := pwTestHasher(t, HasherConfig{Params: params, MaxConcurrent: 2, KeepMemory: 50 * time.Millisecond})
	ok, busy := pwFlood(t, h, 2)
	require.Equal(t, 2, ok+busy)
	require.NotZero(t, pwHeld(h), "the computations allocated their blocks")
	require.Eventually(t, func() bool { return pwHeld(h) == 0 }, 10*time.Second, 10*time.Millisecond,
		"the slots still hold their memory after KeepMemory without computations")
	assert.NotZero(t, h.Stats().Dropped)

	phc, err := h.Hash(t.Context(), "after the idle time")
	require.NoError(t, err)
	ok2, _, err := h.Verify(t.Context(), "after the idle time", phc)
	require.NoError(t, err)
	assert.True(t, ok2)

	kept := pwTestHasher(t, HasherConfig{Params: params, MaxConcurrent: 1, KeepMemory: -1})
	_, err = kept.Hash(t.Context(), "kept for good")
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, params.Memory, pwHeld(kept), "KeepMemory < 0 keeps the block")
	assert.Zero(t, kept.Stats().Dropped)

	busyHasher := pwTestHasher(t, HasherConfig{Params: params, MaxConcurrent: 2, KeepMemory: time.Millisecond})
	for range 5 {
		pwFlood(t, busyHasher, 8)
	}
	phc, err = busyHasher.Hash(t.Context(), "still right")
	require.NoError(t, err)
	ok3, _, err := busyHasher.Verify(t.Context(), "still right", phc)
	require.NoError(t, err)
	assert.True(t, ok3, "computations racing with the drops still verify")
}
