package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/vault"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func keyOf(fill byte) []byte { return bytes.Repeat([]byte{fill}, vault.KEKSize) }

func ring(t testing.TB, multi string) *vault.KeyRing {
	t.Helper()
	kr, err := vault.ParseKEKs("", multi)
	require.NoError(t, err)
	return kr
}

func TestParseKEKs(t *testing.T) {
	k1, k2 := b64(keyOf(1)), b64(keyOf(2))
	cases := []struct {
		name, single, multi string
		wantActive          string
		wantIDs             []string
		wantErrNames        string // the variable the error must name
	}{
		{name: "single", single: k1, wantActive: "1", wantIDs: []string{"1"}},
		{name: "single_trimmed", single: " " + k1 + "\n", wantActive: "1", wantIDs: []string{"1"}},
		{name: "multi_first_active", multi: "2:" + k2 + ", 1:" + k1, wantActive: "2", wantIDs: []string{"2", "1"}},
		{name: "none", wantErrNames: vault.EnvKEK},
		{name: "both", single: k1, multi: "2:" + k2, wantErrNames: vault.EnvKEKs},
		{name: "single_31_bytes", single: b64(make([]byte, 31)), wantErrNames: vault.EnvKEK},
		{name: "single_33_bytes", single: b64(make([]byte, 33)), wantErrNames: vault.EnvKEK},
		{name: "single_not_base64", single: "not base64!", wantErrNames: vault.EnvKEK},
		{name: "single_url_alphabet", single: base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), wantErrNames: vault.EnvKEK},
		{name: "multi_no_colon", multi: k1, wantErrNames: vault.EnvKEKs},
		{name: "multi_bad_id", multi: "a b:" + k1, wantErrNames: vault.EnvKEKs},
		{name: "multi_empty_id", multi: ":" + k1, wantErrNames: vault.EnvKEKs},
		{name: "multi_duplicate_id", multi: "1:" + k1 + ",1:" + k2, wantErrNames: vault.EnvKEKs},
		{name: "multi_short_key", multi: "2:" + b64(make([]byte, 16)) + ",1:" + k1, wantErrNames: vault.EnvKEKs},
		{name: "multi_trailing_comma", multi: "2:" + k2 + ",", wantErrNames: vault.EnvKEKs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := vault.ParseKEKs(tc.single, tc.multi)
			if tc.wantErrNames != "" {
				require.Error(t, err, "single=%q multi=%q", tc.single, tc.multi)
				assert.Contains(t, err.Error(), tc.wantErrNames, "the error names the variable")
				for _, k := range []string{k1, k2} {
					assert.NotContains(t, err.Error(), k, "no key material in the error")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantActive, kr.ActiveKEKID())
			assert.Equal(t, tc.wantIDs, kr.IDs())
			assert.NotContains(t, kr.String(), k1)
			assert.NotContains(t, fmt.Sprintf("%v %+v", kr, kr), k1)
		})
	}
	_, err := vault.ParseKEKs("", "")
	require.ErrorIs(t, err, vault.ErrNoKEK)
}

func TestKeyRingFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	t.Run("production_without_kek_fails", func(t *testing.T) {
		_, _, err := vault.KeyRingFromEnv(true, env(nil))
		require.ErrorIs(t, err, vault.ErrNoKEK)
		assert.Contains(t, err.Error(), vault.EnvKEK)
	})
	t.Run("production_wrong_length_fails", func(t *testing.T) {
		_, _, err := vault.KeyRingFromEnv(true, env(map[string]string{vault.EnvKEK: b64(make([]byte, 24))}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), vault.EnvKEK)
	})
	t.Run("production_zero_key_fails", func(t *testing.T) {
		_, _, err := vault.KeyRingFromEnv(true, env(map[string]string{vault.EnvKEKs: "2:" + b64(keyOf(2)) + ",1:" + b64(make([]byte, 32))}))
		require.Error(t, err)
	})
	t.Run("production_with_kek", func(t *testing.T) {
		kr, warn, err := vault.KeyRingFromEnv(true, env(map[string]string{vault.EnvKEK: b64(keyOf(7))}))
		require.NoError(t, err)
		assert.Empty(t, warn)
		assert.Equal(t, "1", kr.ActiveKEKID())
	})
	t.Run("development_without_kek_warns", func(t *testing.T) {
		kr, warn, err := vault.KeyRingFromEnv(false, env(nil))
		require.NoError(t, err)
		assert.Equal(t, vault.DevelopmentKEKID, kr.ActiveKEKID())
		assert.Contains(t, warn, vault.EnvKEK)
		// The development KEK is the all-zero key: a ring built from 32
		// zero bytes opens what it wraps.
		zero, err := vault.NewKeyRing(vault.KEK{ID: vault.DevelopmentKEKID, Key: make([]byte, 32)})
		require.NoError(t, err)
		user := uuid.New()
		w, err := vault.Wrap(context.Background(), kr, user, keyOf(9))
		require.NoError(t, err)
		mk, err := vault.Unwrap(context.Background(), zero, user, w)
		require.NoError(t, err)
		assert.Equal(t, keyOf(9), mk)
	})
	t.Run("development_malformed_kek_fails", func(t *testing.T) {
		_, _, err := vault.KeyRingFromEnv(false, env(map[string]string{vault.EnvKEK: "short"}))
		require.Error(t, err)
	})
}

func TestWrapUnwrap(t *testing.T) {
	ctx := context.Background()
	kr := ring(t, "1:"+b64(keyOf(1)))
	alice, bob := uuid.New(), uuid.New()
	mk := keyOf(0xAA)
	w, err := vault.Wrap(ctx, kr, alice, mk)
	require.NoError(t, err)
	assert.Equal(t, "1", w.KEKID)
	assert.Equal(t, vault.FormatVersion, w.FormatVersion)
	assert.Len(t, w.IV, vault.IVSize)
	assert.Len(t, w.Ciphertext, 48)
	assert.False(t, bytes.Contains(w.Ciphertext, mk[:8]), "the key is not in the clear")

	got, err := vault.Unwrap(ctx, kr, alice, w)
	require.NoError(t, err)
	assert.Equal(t, mk, got)

	other := ring(t, "1:"+b64(keyOf(2))) // same id, another key
	mutate := func(f func(*vault.Wrapped)) vault.Wrapped {
		c := vault.Wrapped{KEKID: w.KEKID, FormatVersion: w.FormatVersion,
			IV: bytes.Clone(w.IV), Ciphertext: bytes.Clone(w.Ciphertext)}
		f(&c)
		return c
	}
	cases := []struct {
		name string
		kw   vault.KeyWrapper
		user uuid.UUID
		w    vault.Wrapped
	}{
		// The row copied into another user's row, IV and kek id included.
		{"copied_to_another_user", kr, bob, w},
		{"tampered_ciphertext_first_byte", kr, alice, mutate(func(c *vault.Wrapped) { c.Ciphertext[0] ^= 1 })},
		{"tampered_tag", kr, alice, mutate(func(c *vault.Wrapped) { c.Ciphertext[len(c.Ciphertext)-1] ^= 0x80 })},
		{"truncated_ciphertext", kr, alice, mutate(func(c *vault.Wrapped) { c.Ciphertext = c.Ciphertext[:40] })},
		{"empty_ciphertext", kr, alice, mutate(func(c *vault.Wrapped) { c.Ciphertext = nil })},
		{"tampered_iv", kr, alice, mutate(func(c *vault.Wrapped) { c.IV[3] ^= 1 })},
		{"iv_11_bytes", kr, alice, mutate(func(c *vault.Wrapped) { c.IV = c.IV[:11] })},
		{"iv_13_bytes", kr, alice, mutate(func(c *vault.Wrapped) { c.IV = append(c.IV, 0) })},
		{"iv_empty", kr, alice, mutate(func(c *vault.Wrapped) { c.IV = nil })},
		{"wrong_kek", other, alice, w},
		{"unknown_kek_id", kr, alice, mutate(func(c *vault.Wrapped) { c.KEKID = "9" })},
		{"invalid_kek_id", kr, alice, mutate(func(c *vault.Wrapped) { c.KEKID = "" })},
		{"kek_id_relabelled", ring(t, "2:"+b64(keyOf(1))), alice, mutate(func(c *vault.Wrapped) { c.KEKID = "2" })},
		{"other_format_version", kr, alice, mutate(func(c *vault.Wrapped) { c.FormatVersion = 2 })},
		{"nil_user", kr, uuid.Nil, w},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := vault.Unwrap(ctx, tc.kw, tc.user, tc.w)
			assert.Nil(t, got)
			// One error value for every cause: identity, not just errors.Is.
			assert.Same(t, vault.ErrUnwrap, err, "got %v", err)
		})
	}
}

func TestWrapRefusesBadInput(t *testing.T) {
	kr := ring(t, "1:"+b64(keyOf(1)))
	_, err := vault.Wrap(context.Background(), kr, uuid.New(), make([]byte, 31))
	require.Error(t, err)
	_, err = vault.Wrap(context.Background(), kr, uuid.Nil, make([]byte, 32))
	require.ErrorIs(t, err, vault.ErrNoUser)
}

func TestKEKRotationKeepsOldWrapsReadable(t *testing.T) {
	ctx := context.Background()
	user := uuid.New()
	old := ring(t, "1:"+b64(keyOf(1)))
	w, err := vault.Wrap(ctx, old, user, keyOf(5))
	require.NoError(t, err)

	rotated := ring(t, "2:"+b64(keyOf(2))+",1:"+b64(keyOf(1)))
	got, err := vault.Unwrap(ctx, rotated, user, w)
	require.NoError(t, err, "the old KEK stays in the ring until rewrap")
	assert.Equal(t, keyOf(5), got)
	w2, err := vault.Wrap(ctx, rotated, user, got)
	require.NoError(t, err)
	assert.Equal(t, "2", w2.KEKID, "new wraps use the first (active) KEK")

	onlyNew := ring(t, "2:"+b64(keyOf(2)))
	_, err = vault.Unwrap(ctx, onlyNew, user, w)
	assert.Same(t, vault.ErrUnwrap, err, "without the old KEK the old wrap is unreadable")
}

func TestWrapIVsNeverRepeat(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000 // -short: a smaller sample
	}
	kr := ring(t, "1:"+b64(keyOf(1)))
	user, mk := uuid.New(), keyOf(3)
	seen := make(map[[vault.IVSize]byte]struct{}, n)
	for i := range n {
		w, err := vault.Wrap(context.Background(), kr, user, mk)
		require.NoError(t, err)
		iv := [vault.IVSize]byte(w.IV)
		_, dup := seen[iv]
		require.False(t, dup, "IV repeated after %d wraps", i)
		seen[iv] = struct{}{}
	}
	assert.Len(t, seen, n)
}

func TestKEKIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"1": true, "2026-05.prod_A": true, strings.Repeat("a", 64): true,
		"": false, strings.Repeat("a", 65): false, "a:b": false, "a,b": false, "ü": false, "a\x00": false,
	} {
		assert.Equal(t, want, vault.ValidKEKID(id), "ValidKEKID(%q)", id)
	}
}

func FuzzUnwrap(f *testing.F) {
	kr, err := vault.ParseKEKs("", "2:"+b64(keyOf(2))+",1:"+b64(keyOf(1)))
	if err != nil {
		f.Fatal(err)
	}
	user := uuid.MustParse("0b6f1d1e-8a4c-4e53-9a43-4f0d2b8f6c11")
	w, err := vault.Wrap(context.Background(), kr, user, keyOf(0x42))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(user[:], w.KEKID, w.FormatVersion, w.IV, w.Ciphertext)
	f.Add(user[:], "1", 1, w.IV, w.Ciphertext)
	f.Add(user[:], "2", 2, w.IV[:11], w.Ciphertext)
	f.Add([]byte{}, "", 0, []byte{}, []byte{})
	f.Add(make([]byte, 16), "2", 1, make([]byte, 12), make([]byte, 48))
	f.Fuzz(func(t *testing.T, userBytes []byte, kekID string, version int, iv, ct []byte) {
		var u uuid.UUID
		copy(u[:], userBytes)
		got, err := vault.Unwrap(context.Background(), kr, u, vault.Wrapped{KEKID: kekID, FormatVersion: version, IV: iv, Ciphertext: ct})
		if err != nil {
			if err != vault.ErrUnwrap {
				t.Fatalf("Unwrap error %v, want exactly ErrUnwrap", err)
			}
			return
		}
		// Only a genuine wrap opens (forging GCM is out of reach). The
		// seeds come from the coordinating process, whose random IV
		// differs from this worker's w, so compare what binds, not bytes.
		if u != user || kekID != w.KEKID || version != vault.FormatVersion || len(iv) != vault.IVSize {
			t.Fatalf("forged input unwrapped: user %s kek %q version %d", u, kekID, version)
		}
		if !bytes.Equal(got, keyOf(0x42)) {
			t.Fatalf("unwrapped %x, want the wrapped key", got)
		}
	})
}
