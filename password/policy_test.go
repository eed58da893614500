package password

import (
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
)

// pwRandom returns n random characters from a mixed alphabet, which no
// common-password list and no email local part in these tests contains.
func pwRandom(n int) string {
	return pwRandomFrom("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.!", n)
}

func pwRandomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand.Read does not fail (Go 1.24+)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// pwReason returns the WEAK_PASSWORD reason of err, failing the test for
// any other error.
func pwReason(t *testing.T, err error) string {
	t.Helper()
	var ae *autherr.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, autherr.WeakPassword, ae.Code, "code of %v", err)
	reason, ok := ae.Details["reason"].(string)
	require.True(t, ok, "details %v carry no reason", ae.Details)
	return reason
}

func TestPasswordPolicyCheck(t *testing.T) {
	const email = "alice.smith@example.com"
	emoji8 := strings.Repeat("🦊", 8)
	cjk7 := "密码安全性很高"
	require.Equal(t, 7, utf8.RuneCountInString(cjk7))
	require.Greater(t, len(cjk7), 8, "the CJK case must be long in bytes and short in code points")

	for _, tc := range []struct {
		name     string
		policy   Policy
		password string
		email    string
		reason   string         // "" = accepted
		details  map[string]any // checked when set
	}{
		{"ASCII at minimum", Policy{}, "Zq8!vR2k", email, "", nil},
		{"ASCII one short", Policy{}, "Zq8!vR2", email, "too_short", map[string]any{"reason": "too_short", "minLength": 8}},
		{"empty", Policy{}, "", email, "too_short", nil},
		{"spaces count", Policy{}, "a b c d e", email, "", nil},
		{"8 emoji = 8 code points", Policy{}, emoji8, email, "", nil},
		{"7 CJK = 7 code points", Policy{}, cjk7, email, "too_short", map[string]any{"reason": "too_short", "minLength": 8}},
		{"combining marks count as code points", Policy{}, strings.Repeat("e\u0301", 4), email, "", nil},
		{"min 15, 14 given", Policy{MinLength: 15}, pwRandom(14), email, "too_short", map[string]any{"reason": "too_short", "minLength": 15}},
		{"min 15, 15 given", Policy{MinLength: 15}, pwRandom(15), email, "", nil},
		{"64 at the default max", Policy{}, pwRandom(64), email, "", nil},
		{"exactly 64", Policy{MaxLength: 64}, pwRandom(64), email, "", nil},
		{"65 at max 64", Policy{MaxLength: 64}, pwRandom(65), email, "too_long", map[string]any{"reason": "too_long", "maxLength": 64}},
		{"exactly 256 (default max)", Policy{}, pwRandom(256), email, "", nil},
		{"257 (default max + 1)", Policy{}, pwRandom(257), email, "too_long", map[string]any{"reason": "too_long", "maxLength": 256}},
		{"256 emoji = 1024 bytes", Policy{}, strings.Repeat("🦊", 256), email, "", nil},
		{"257 emoji at max 300: over 1 KiB", Policy{MaxLength: 300}, strings.Repeat("🦊", 257), email, "too_long", map[string]any{"reason": "too_long", "maxLength": 300, "maxBytes": 1024}},
		{"1024 bytes at max 1024", Policy{MaxLength: 1024}, pwRandom(1024), email, "", nil},
		{"1025 bytes at max 1024", Policy{MaxLength: 1024}, pwRandom(1025), email, "too_long", map[string]any{"reason": "too_long", "maxLength": 1024, "maxBytes": 1024}},
		{"megabyte", Policy{}, strings.Repeat("a", 1<<20), email, "too_long", nil},
		{"invalid UTF-8", Policy{}, "abcdefgh\xff", email, "invalid_utf8", map[string]any{"reason": "invalid_utf8"}},
		{"common", Policy{}, "password", email, "common", map[string]any{"reason": "common"}},
		{"common, other case", Policy{}, "PassWord", email, "common", nil},
		{"common, 8+ chars", Policy{}, "baseball", email, "common", nil},
		{"common digits", Policy{}, "12345678", email, "common", nil},
		{"common keyboard", Policy{}, "qwertyuiop", email, "common", nil},
		{"common word plus suffix is not in the list", Policy{}, "password-" + pwRandom(6), email, "", nil},
		{"equals local part", Policy{}, "alice.smith", email, "contains_email", map[string]any{"reason": "contains_email"}},
		{"contains local part", Policy{}, "my-ALICE.SMITH-2024", email, "contains_email", nil},
		{"email itself", Policy{}, "alice.smith@example.com", email, "contains_email", nil},
		{"email with spaces and capitals", Policy{}, "xxalice.smithxx", "  Alice.Smith@Example.COM ", "contains_email", nil},
		{"local part before +tag", Policy{}, "bobby-tables-99", "bobby+shop@example.com", "contains_email", nil},
		{"full local part with +tag", Policy{}, "zzbobby+shopzz", "bobby+shop@example.com", "contains_email", nil},
		{"2-char local part not checked", Policy{}, "al-" + pwRandom(10), "al@example.com", "", nil},
		{"3-char local part checked", Policy{}, "xbobx" + pwRandom(6), "bob@example.com", "contains_email", nil},
		{"non-ASCII local part", Policy{}, "ich-bin-JÜRGEN-hier", "jürgen@example.de", "contains_email", nil},
		{"no email given", Policy{}, pwRandom(12), "", "", nil},
		{"domain alone is fine", Policy{}, "example.com-" + pwRandom(6), email, "", nil},
		{"no composition rules: lower-case only", Policy{}, "correcthorsebatterystaple", email, "", nil},
		{"control characters are allowed", Policy{}, "tab\there-" + pwRandom(4), email, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.password, tc.email)
			if tc.reason == "" {
				assert.NoError(t, err, "Check(%.40q, %q)", tc.password, tc.email)
				assert.False(t, tc.policy.TooLong(tc.password), "TooLong of an accepted password")
				return
			}
			require.Error(t, err, "Check(%.40q, %q) accepted", tc.password, tc.email)
			assert.Equal(t, tc.reason, pwReason(t, err), "Check(%.40q, %q)", tc.password, tc.email)
			assert.Equal(t, tc.reason == "too_long", tc.policy.TooLong(tc.password), "TooLong disagrees with Check")
			if tc.details != nil {
				var ae *autherr.Error
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, tc.details, ae.Details)
			}
			assert.False(t, autherr.CountsTowardLockout(err))
			assert.Equal(t, 400, autherr.Classify(err).Status())
			if len(tc.password) >= 10 { // shorter ones ("password") may be words of the message
				assert.NotContains(t, err.Error(), tc.password, "the error quotes the password")
			}
		})
	}
}

func TestPasswordPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		ok     bool
	}{
		{"zero value", Policy{}, true},
		{"min 8", Policy{MinLength: 8}, true},
		{"min 15", Policy{MinLength: 15}, true},
		{"min 7", Policy{MinLength: 7}, false},
		{"min negative", Policy{MinLength: -1}, false},
		{"max 64", Policy{MaxLength: 64}, true},
		{"max 63", Policy{MaxLength: 63}, false},
		{"max negative", Policy{MaxLength: -5}, false},
		{"max 1024", Policy{MaxLength: 1024}, true},
		{"max 1025", Policy{MaxLength: 1025}, false},
		{"min above max", Policy{MinLength: 100, MaxLength: 64}, false},
		{"min above default max", Policy{MinLength: 257}, false},
		{"min equals max", Policy{MinLength: 64, MaxLength: 64}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if tc.ok {
				assert.NoError(t, err, "%+v", tc.policy)
				return
			}
			assert.Error(t, err, "%+v", tc.policy)
			// Check refuses to run with a broken policy, as a bug, not as the user's fault.
			var ae *autherr.Error
			require.ErrorAs(t, tc.policy.Check(pwRandom(100), ""), &ae)
			assert.Equal(t, autherr.Internal, ae.Code)
		})
	}
}

func TestPasswordPolicyTooLong(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   Policy
		password string
		want     bool
	}{
		{"empty", Policy{}, "", false},
		{"256", Policy{}, strings.Repeat("x", 256), false},
		{"257", Policy{}, strings.Repeat("x", 257), true},
		{"256 emoji", Policy{}, strings.Repeat("🦊", 256), false},
		{"1025 bytes", Policy{MaxLength: 1024}, strings.Repeat("x", 1025), true},
		{"10 MB", Policy{}, strings.Repeat("x", 10<<20), true},
		{"invalid bytes count one each", Policy{MaxLength: 64}, strings.Repeat("\xff", 65), true},
		{"broken max clamps to 64", Policy{MaxLength: 10}, strings.Repeat("x", 64), false},
		{"broken max clamps to 64, 65", Policy{MaxLength: 10}, strings.Repeat("x", 65), true},
		{"broken max clamps to 1024", Policy{MaxLength: 5000}, strings.Repeat("x", 1025), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.policy.TooLong(tc.password), "TooLong(%d bytes)", len(tc.password))
		})
	}
}

func TestPasswordPolicyCommonList(t *testing.T) {
	list := pwCommonList()
	assert.GreaterOrEqual(t, len(list), 10000, "the common-password list is too short")

	lines := strings.Split(strings.TrimSuffix(pwCommonText, "\n"), "\n")
	assert.Len(t, list, len(lines), "the list has empty or duplicate lines")
	assert.True(t, slices.IsSorted(list), "the lookup needs the list sorted")
	for i, w := range lines {
		if w == "" || w != strings.ToLower(w) || strings.TrimSpace(w) != w {
			t.Errorf("line %d %q: want a non-empty, lower-cased entry without surrounding spaces", i+1, w)
		}
	}

	for _, pw := range []string{"password", "123456", "qwerty", "PASSWORD", "Qwerty", "iloveyou", "trustno1"} {
		assert.True(t, pwIsCommon(strings.ToLower(pw)), "%q is not in the list", pw)
	}
	for _, pw := range []string{"password", "123456", "qwerty"} {
		// At MinLength 8 the short ones are refused by length first; the
		// list must refuse them too, whatever the minimum.
		err := Policy{}.Check(pw, "")
		assert.Error(t, err, "Check(%q) accepted", pw)
	}
	assert.Equal(t, "common", pwReason(t, Policy{}.Check("password", "")))
	assert.Equal(t, "common", pwReason(t, Policy{}.Check("qwertyuiop", "")))

	for range 5 {
		pw := pwRandom(20)
		assert.NoError(t, Policy{}.Check(pw, "someone@example.com"), "random %q refused", pw)
	}
	// Every entry is found by the lookup, and nothing between entries is:
	// a lookup that missed entries (an unsorted list, a wrong comparison)
	// would let the listed passwords through.
	for _, w := range lines {
		if !pwIsCommon(w) {
			t.Fatalf("entry %q not found by the lookup", w)
		}
		if pwIsCommon(w + "\x00") {
			t.Fatalf("%q found though not listed", w+"\x00")
		}
	}
	// The list is built once and shared.
	assert.Same(t, &list[0], &pwCommonList()[0])
}

// FuzzPasswordPolicy checks that Check never panics, never accepts a
// password outside the length limits or that is not UTF-8, agrees with
// TooLong, and answers only WEAK_PASSWORD (or INTERNAL for a policy that
// fails Validate).
func FuzzPasswordPolicy(f *testing.F) {
	for _, s := range []struct {
		pw, email string
		minLen    int
		maxLen    int
	}{
		{"Zq8!vR2k", "alice@example.com", 0, 0},
		{"password", "", 0, 0},
		{"alice-rocks-1999", "Alice@example.com", 8, 64},
		{strings.Repeat("🦊", 65), "x@y", 0, 64},
		{strings.Repeat("a", 1025), "", 0, 1024},
		{"abc\xffdefgh", "abc@x", 0, 0},
		{"密码安全性很高", "", 0, 0},
		{"", "", 7, 63},
		{"bobby+x", "bobby+x@example.com", 15, 0},
	} {
		f.Add(s.pw, s.email, s.minLen, s.maxLen)
	}
	allowed := map[string]bool{"too_short": true, "too_long": true, "invalid_utf8": true, "common": true, "contains_email": true}
	f.Fuzz(func(t *testing.T, password, email string, minLen, maxLen int) {
		p := Policy{MinLength: minLen, MaxLength: maxLen}
		err := p.Check(password, email)
		tooLong := p.TooLong(password)
		if p.Validate() != nil {
			var ae *autherr.Error
			if !assert.ErrorAs(t, err, &ae) || ae.Code != autherr.Internal {
				t.Fatalf("policy %+v fails Validate but Check answered %v", p, err)
			}
			return
		}
		effMin, effMax := p.pwLimits()
		n := utf8.RuneCountInString(password)
		if err == nil {
			if n > effMax || len(password) > 1024 || n < effMin || !utf8.ValidString(password) || tooLong {
				t.Fatalf("policy %+v accepted %d code points / %d bytes (valid UTF-8 %v)", p, n, len(password), utf8.ValidString(password))
			}
			return
		}
		var ae *autherr.Error
		if !assert.ErrorAs(t, err, &ae) {
			return
		}
		if ae.Code != autherr.WeakPassword {
			t.Fatalf("Check answered %v, want WEAK_PASSWORD", err)
		}
		reason, _ := ae.Details["reason"].(string)
		if !allowed[reason] {
			t.Fatalf("unknown reason %q", reason)
		}
		if (reason == "too_long") != tooLong {
			t.Fatalf("reason %q but TooLong %v", reason, tooLong)
		}
	})
}
