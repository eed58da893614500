package mfa

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/mana-how/mana-auth/web"
)

// The TOTP parameters every authenticator app understands (RFC 6238 with
// its defaults): HMAC-SHA-1, 6 digits, 30-second steps.
const (
	Period     = 30 * time.Second
	Digits     = 6
	SecretSize = 20 // bytes: 160 bits, RFC 4226's recommendation
	// Skew is how many steps before and after the current one a code may
	// come from (clocks drift; a code typed at the end of its step arrives
	// in the next).
	Skew = 1
)

// RecoveryCodes is how many recovery codes confirming a factor gives.
const RecoveryCodes = 10

// Recovery codes are 12 symbols of Crockford's base32 (60 bits from the
// random source), shown in three groups of four: "7KQ2-M9XD-4HNC".
const (
	recoveryAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	recoveryLen      = 12
	recoveryBits     = recoveryLen * 5
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// stepOf is the TOTP time step t falls in.
func stepOf(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// totpCode is the code of secret for a time step, computed by pquerna/otp.
func totpCode(secret []byte, step int64) (string, error) {
	return hotp.GenerateCodeCustom(b32.EncodeToString(secret), uint64(step), // #nosec G115 -- a TOTP step counts 30 s periods since 1970: never negative
		hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// matchStep returns the earliest time step within Skew of now whose code
// is code and that is later than after (the last step accepted; nil when
// none was), or false. Every candidate is computed and compared in
// constant time, so the answer's timing does not tell how close a guess
// came or which step it matched.
func matchStep(secret []byte, code string, now time.Time, after *int64) (int64, bool, error) {
	cur := stepOf(now)
	var found int64
	ok := 0
	for s := cur + Skew; s >= cur-Skew; s-- {
		want, err := totpCode(secret, s)
		if err != nil {
			return 0, false, fmt.Errorf("mfa: totp code: %w", err)
		}
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code))
		if after != nil && s <= *after {
			eq = 0
		}
		// Walking down, a later match overwrites: the earliest step wins.
		found = int64(subtle.ConstantTimeSelect(eq, int(s), int(found)))
		ok |= eq
	}
	return found, ok == 1, nil
}

// parseCode accepts a TOTP code as typed: six ASCII digits, spaces
// ignored ("123 456").
func parseCode(field, s string) (string, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if len(s) != Digits {
		return "", web.Invalid(map[string]string{field: "6 digits"})
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", web.Invalid(map[string]string{field: "6 digits"})
		}
	}
	return s, nil
}

// newRecoveryCode draws one recovery code, formatted for people.
func newRecoveryCode(r io.Reader) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("mfa: random recovery code: %w", err)
	}
	v := binary.BigEndian.Uint64(b[:]) >> (64 - recoveryBits)
	out := make([]byte, 0, recoveryLen+2)
	for i := recoveryLen - 1; i >= 0; i-- {
		out = append(out, recoveryAlphabet[(v>>(5*uint(i)))&31])
		if i > 0 && i%4 == 0 {
			out = append(out, '-')
		}
	}
	return string(out), nil
}

// normalizeRecoveryCode accepts a recovery code as typed: case, spaces and
// hyphens do not matter, and the letters Crockford's base32 leaves out
// for looking like digits are read as those digits (I and L as 1, O as 0).
// It returns the 12 symbols.
func normalizeRecoveryCode(field, s string) (string, error) {
	if len(s) > 64 {
		return "", web.Invalid(map[string]string{field: "12 characters"})
	}
	var out strings.Builder
	for _, c := range strings.ToUpper(s) {
		switch {
		case c == '-' || c == ' ':
			continue
		case c == 'I' || c == 'L':
			c = '1'
		case c == 'O':
			c = '0'
		}
		if c > 127 || !strings.ContainsRune(recoveryAlphabet, c) {
			return "", web.Invalid(map[string]string{field: "12 characters of 0-9 and A-Z"})
		}
		out.WriteRune(c)
	}
	if out.Len() != recoveryLen {
		return "", web.Invalid(map[string]string{field: "12 characters"})
	}
	return out.String(), nil
}

// recoveryHash is what is stored of a normalised recovery code: SHA-256
// over a label, the user id and the code. The user id makes equal codes of
// two users differ and a table of precomputed hashes useless; 60 random
// bits make guessing a code from its hash cost about 2^59 hashes per code
// of one user.
func recoveryHash(userID uuid.UUID, code string) []byte {
	h := sha256.New()
	h.Write([]byte("mana-auth/mfa/recovery-code/v1\x00"))
	h.Write(userID[:])
	h.Write([]byte(code))
	return h.Sum(nil)
}
