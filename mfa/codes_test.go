package mfa

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/vault"
)

// rfcSecret is the SHA-1 seed of RFC 6238 appendix B.
var rfcSecret = []byte("12345678901234567890")

// TestTOTPCodeRFC6238Vectors: the codes pquerna/otp computes for us are
// RFC 6238's (appendix B, SHA-1, the 8-digit values cut to 6). A wrong
// algorithm, digit count, period or counter encoding fails here.
func TestTOTPCodeRFC6238Vectors(t *testing.T) {
	for unix, want := range map[int64]string{
		59: "287082", 1111111109: "081804", 1111111111: "050471",
		1234567890: "005924", 2000000000: "279037", 20000000000: "353130",
	} {
		got, err := totpCode(rfcSecret, stepOf(time.Unix(unix, 0)))
		require.NoError(t, err)
		assert.Equal(t, want, got, "T=%d", unix)
	}
}

func TestMatchStep(t *testing.T) {
	now := time.Unix(1234567890, 0)
	cur := stepOf(now)
	code := func(step int64) string {
		c, err := totpCode(rfcSecret, step)
		require.NoError(t, err)
		return c
	}
	last := func(v int64) *int64 { return &v }
	tests := []struct {
		name   string
		code   string
		after  *int64
		want   int64
		wantOK bool
	}{
		{"current step", code(cur), nil, cur, true},
		{"previous step (skew)", code(cur - 1), nil, cur - 1, true},
		{"next step (skew)", code(cur + 1), nil, cur + 1, true},
		{"two steps back", code(cur - 2), nil, 0, false},
		{"two steps ahead", code(cur + 2), nil, 0, false},
		{"wrong code", "000000", nil, 0, false},
		{"current step already used", code(cur), last(cur), 0, false},
		{"previous step after the current was used", code(cur - 1), last(cur), 0, false},
		{"next step after the current was used", code(cur + 1), last(cur), cur + 1, true},
		{"current step after the previous was used", code(cur), last(cur - 1), cur, true},
		{"empty", "", nil, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := matchStep(rfcSecret, tc.code, now, tc.after)
			require.NoError(t, err)
			assert.Equal(t, tc.wantOK, ok, "code %q", tc.code)
			if tc.wantOK {
				assert.Equal(t, tc.want, got)
			}
		})
	}
}

func TestParseCode(t *testing.T) {
	for in, want := range map[string]string{"123456": "123456", " 123 456 ": "123456", "000000": "000000"} {
		got, err := parseCode("code", in)
		require.NoError(t, err, "%q", in)
		assert.Equal(t, want, got, "%q", in)
	}
	for _, in := range []string{"", "12345", "1234567", "12345a", "١٢٣٤٥٦", "123-456", "12345\x00"} {
		_, err := parseCode("code", in)
		require.Error(t, err, "%q", in)
		assert.Equal(t, autherr.ValidationFailed, autherr.CodeOf(err), "%q", in)
	}
}

func TestRecoveryCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := newRecoveryCode(rand.Reader)
		require.NoError(t, err)
		require.Len(t, c, 14, c)
		assert.Equal(t, byte('-'), c[4])
		assert.Equal(t, byte('-'), c[9])
		norm, err := normalizeRecoveryCode("recoveryCode", c)
		require.NoError(t, err, c)
		assert.Equal(t, strings.ReplaceAll(c, "-", ""), norm)
		assert.False(t, seen[norm], "repeated code %s", c)
		seen[norm] = true
	}
	// 60 bits: the low 4 bits of the 8 random bytes are dropped, all 60
	// others show.
	c, err := newRecoveryCode(bytes.NewReader(bytes.Repeat([]byte{0xff}, 8)))
	require.NoError(t, err)
	assert.Equal(t, "ZZZZ-ZZZZ-ZZZZ", c)
	c, err = newRecoveryCode(bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0, 0x1f}))
	require.NoError(t, err)
	assert.Equal(t, "0000-0000-0001", c)
	c, err = newRecoveryCode(bytes.NewReader([]byte{0xf8, 0, 0, 0, 0, 0, 0, 0}))
	require.NoError(t, err)
	assert.Equal(t, "Z000-0000-0000", c)
	_, err = newRecoveryCode(bytes.NewReader(nil))
	require.Error(t, err, "a failing random source is an error, not a weak code")

	for in, want := range map[string]string{
		"7KQ2-M9XD-4HNC":    "7KQ2M9XD4HNC",
		"7kq2 m9xd 4hnc":    "7KQ2M9XD4HNC",
		"7KQ2M9XD4HNC":      "7KQ2M9XD4HNC",
		"oIL0-0000-0000":    "011000000000",
		" 7KQ2-M9XD-4HNC ":  "7KQ2M9XD4HNC",
		"7-K-Q-2-M9XD-4HNC": "7KQ2M9XD4HNC",
	} {
		got, err := normalizeRecoveryCode("recoveryCode", in)
		require.NoError(t, err, "%q", in)
		assert.Equal(t, want, got, "%q", in)
	}
	for _, in := range []string{"", "7KQ2-M9XD-4HN", "7KQ2-M9XD-4HNCX", "7KQ2-M9XD-4HNU", "7KQ2_M9XD_4HNC", "7KQ2-M9XD-4HN\u00c7",
		strings.Repeat("-", 100) + "7KQ2M9XD4HNC"} {
		_, err := normalizeRecoveryCode("recoveryCode", in)
		require.Error(t, err, "%q", in)
		assert.Equal(t, autherr.ValidationFailed, autherr.CodeOf(err), "%q", in)
	}
}

func TestRecoveryHashIsPerUser(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	assert.Len(t, recoveryHash(a, "7KQ2M9XD4HNC"), 32)
	assert.NotEqual(t, recoveryHash(a, "7KQ2M9XD4HNC"), recoveryHash(b, "7KQ2M9XD4HNC"), "one code, two users")
	assert.NotEqual(t, recoveryHash(a, "7KQ2M9XD4HNC"), recoveryHash(a, "7KQ2M9XD4HND"))
	assert.Equal(t, recoveryHash(a, "7KQ2M9XD4HNC"), recoveryHash(a, "7KQ2M9XD4HNC"))
}

// TestSealBindsUserFactorAndKEK: a sealed secret opens only for its own
// user and factor, under its own KEK; every failure is the same error.
func TestSealBindsUserFactorAndKEK(t *testing.T) {
	ctx := context.Background()
	k1, k2 := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(k1)
	_, _ = rand.Read(k2)
	ring, err := vault.NewKeyRing(vault.KEK{ID: "a", Key: k1}, vault.KEK{ID: "b", Key: k2})
	require.NoError(t, err)
	user, fac := uuid.New(), uuid.New()
	secret := []byte("twenty bytes secret!")
	s, err := seal(ctx, ring, user, fac, secret)
	require.NoError(t, err)
	assert.Equal(t, "a", s.KEKID)
	assert.NotContains(t, string(s.Box), string(secret))
	got, err := open(ctx, ring, user, fac, s)
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	flip := func(b []byte) []byte { c := bytes.Clone(b); c[0] ^= 1; return c }
	for name, try := range map[string]func() ([]byte, error){
		"other user":    func() ([]byte, error) { return open(ctx, ring, uuid.New(), fac, s) },
		"other factor":  func() ([]byte, error) { return open(ctx, ring, user, uuid.New(), s) },
		"other KEK id":  func() ([]byte, error) { s2 := s; s2.KEKID = "b"; return open(ctx, ring, user, fac, s2) },
		"unknown KEK":   func() ([]byte, error) { s2 := s; s2.KEKID = "zz"; return open(ctx, ring, user, fac, s2) },
		"other version": func() ([]byte, error) { s2 := s; s2.Version = 2; return open(ctx, ring, user, fac, s2) },
		"altered box":   func() ([]byte, error) { s2 := s; s2.Box = flip(s.Box); return open(ctx, ring, user, fac, s2) },
		"altered iv":    func() ([]byte, error) { s2 := s; s2.IV = flip(s.IV); return open(ctx, ring, user, fac, s2) },
		"short iv":      func() ([]byte, error) { s2 := s; s2.IV = s.IV[:8]; return open(ctx, ring, user, fac, s2) },
	} {
		_, err := try()
		assert.True(t, errors.Is(err, errOpen) && err == errOpen, "%s: %v", name, err)
	}
}

func TestProofParse(t *testing.T) {
	tests := []struct {
		name     string
		p        Proof
		code     string
		recovery bool
		field    string // the field VALIDATION_FAILED names; "" for success
	}{
		{"code", Proof{Code: "123 456"}, "123456", false, ""},
		{"recovery code", Proof{RecoveryCode: "7kq2-m9xd-4hnc"}, "7KQ2M9XD4HNC", true, ""},
		{"neither", Proof{}, "", false, "code"},
		{"both", Proof{Code: "123456", RecoveryCode: "7KQ2-M9XD-4HNC"}, "", false, "recoveryCode"},
		{"bad code", Proof{Code: "12345"}, "", false, "code"},
		{"bad recovery code", Proof{RecoveryCode: "nope"}, "", false, "recoveryCode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, recovery, err := tc.p.parse()
			if tc.field == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.code, code)
				assert.Equal(t, tc.recovery, recovery)
				return
			}
			var ae *autherr.Error
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, autherr.ValidationFailed, ae.Code)
			assert.Contains(t, ae.Details["fields"], tc.field)
		})
	}
}

// BenchmarkMatchStep is the cost of checking one code: three HMAC-SHA-1
// codes, compared in constant time.
func BenchmarkMatchStep(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		_, _, _ = matchStep(rfcSecret, "123456", now, nil)
	}
}
