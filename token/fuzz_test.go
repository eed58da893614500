package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
)

// FuzzVerifyToken feeds arbitrary strings to Verify. It must never panic,
// must answer every failure with TOKEN_INVALID or TOKEN_EXPIRED and no
// claims, and must accept only tokens we signed: whatever it accepts (or
// calls expired) must carry, in canonical base64url, a signature by our
// key over exactly its first two segments, checked here with plain
// crypto/ed25519. If Verify accepted alg "none", a foreign or unknown key,
// or a re-encoded segment (padding, CR/LF, non-zero trailing bits), the
// fuzzer finds an accepted string that fails this check. (The check is
// independent of the tokens issued in setup: fuzz workers run setup
// anew, and Issue draws a random jti.)
func FuzzVerifyToken(f *testing.F) {
	clock := tokNewClock()
	key := tokTestKey(f, 1)
	tk := tokNew(f, clock, nil)

	valid, _, err := tk.Issue(uuid.New(), "alice@example.test", uuid.New())
	if err != nil {
		f.Fatal(err)
	}
	handMade := tokSignEd(f, tokValidHeader(key.ID), tokWith(tokValidClaims(clock.Now()), "aud", tokTestAudience), key.Private)
	expired := tokSignEd(f, tokValidHeader(key.ID), tokWith(tokValidClaims(clock.Now().Add(-time.Hour)), "exp", clock.Now().Add(-time.Minute).Unix()), key.Private)
	pub := tokPub(key)
	signedByUs := func(in string) bool {
		parts := strings.Split(in, ".")
		if len(parts) != 3 {
			return false
		}
		for _, p := range parts {
			raw, err := base64.RawURLEncoding.Strict().DecodeString(p)
			if err != nil || base64.RawURLEncoding.EncodeToString(raw) != p {
				return false
			}
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		return ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig)
	}
	if !signedByUs(valid) || !signedByUs(handMade) || !signedByUs(expired) {
		f.Fatal("the independent signature check rejects our own tokens")
	}

	parts := strings.Split(valid, ".")
	seeds := []string{
		valid, handMade, expired,
		"", ".", "..", "...", "a.b.c", "eyJ.eyJ.eyJ",
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1] + "." + parts[2] + "=",
		valid + "\n",
		parts[0] + "." + parts[1] + "." + tokDirtyTail(parts[2]),
		parts[0] + "." + parts[1] + "." + parts[2][:20] + "\r\n" + parts[2][20:],
		parts[0] + "." + parts[1] + "." + strings.ToUpper(parts[2]),
		parts[0] + "." + parts[1] + "." + parts[2][1:],
		tokB64JSON(f, tokWith(tokValidHeader(key.ID), "alg", "none")) + "." + parts[1] + ".",
		tokB64JSON(f, tokWith(tokValidHeader(key.ID), "alg", "HS256")) + "." + parts[1] + "." + parts[2],
		tokB64JSON(f, tokWith(tokValidHeader(key.ID), "jku", "https://evil.test")) + "." + parts[1] + "." + parts[2],
		tokB64JSON(f, tokWith(tokValidHeader(key.ID), "kid", "x")) + "." + parts[1] + "." + parts[2],
		strings.Repeat(".", 1000),
		strings.Repeat("A", 9000),
		valid + "." + valid,
	}
	for _, s := range seeds {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, in string) {
		c, err := tk.Verify(in)
		if err == nil {
			if c == nil {
				t.Fatalf("nil claims without an error for %q", in)
			}
			if !signedByUs(in) {
				t.Fatalf("accepted a token we did not sign: %q", in)
			}
			if in == expired {
				t.Fatalf("expired token accepted")
			}
			return
		}
		if c != nil {
			t.Fatalf("claims returned with error %v", err)
		}
		var ae *autherr.Error
		if !errors.As(err, &ae) {
			t.Fatalf("error is not an *autherr.Error: %v", err)
		}
		switch ae.Code {
		case autherr.TokenInvalid:
		case autherr.TokenExpired:
			if !signedByUs(in) {
				t.Fatalf("TOKEN_EXPIRED for a token we did not sign (%q): only valid tokens may say expired", in)
			}
		default:
			t.Fatalf("code %s for %q, want TOKEN_INVALID or TOKEN_EXPIRED", ae.Code, in)
		}
	})
}

// tokDirtyTail sets a padding bit in the last character of an unpadded
// base64url segment of a 64-byte value (86 characters, the last holding 2
// data bits and 4 zero bits): the lenient decoder reads the same bytes,
// the strict one refuses. Without WithStrictDecoding a second string
// would verify as the same token.
func tokDirtyTail(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|1])
}
