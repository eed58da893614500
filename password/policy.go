package password

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/mana-how/mana-auth/autherr"
)

// Policy decides which new passwords are acceptable, following
// NIST SP 800-63B-4 and OWASP ASVS 5.0: a length range counted in Unicode
// code points, no composition rules (no "one digit, one symbol"), and a
// blocklist of common passwords and of the account's own email local part.
// The zero value is the default policy.
//
// Apply Check to every new password: on register, change-password and
// reset-password. Login checks only TooLong, before any hashing: passwords
// set under an older, weaker policy must still sign in.
type Policy struct {
	// MinLength is the minimum length in code points. Default 8, the
	// least NIST allows; 15 is recommended when the password is the only
	// authenticator of the account (NIST SP 800-63B-4 §3.1.1.2).
	MinLength int
	// MaxLength is the maximum length in code points. Default 256; at
	// least 64 (NIST: verifiers SHALL allow 64), at most 1024. Independent
	// of it, a password is never longer than 1024 bytes of UTF-8.
	MaxLength int
}

const (
	pwDefaultMinLength = 8
	pwDefaultMaxLength = 256
	pwFloorMinLength   = 8    // NIST: SHALL require at least 8
	pwFloorMaxLength   = 64   // NIST: SHALL permit at least 64
	pwMaxBytes         = 1024 // hard cap in bytes of UTF-8, whatever MaxLength says
	pwMinLocalPart     = 3    // shorter email local parts are not checked (see Check)
)

// The reasons Policy.Check gives in Details["reason"].
const (
	pwReasonTooShort      = "too_short"
	pwReasonTooLong       = "too_long"
	pwReasonInvalidUTF8   = "invalid_utf8"
	pwReasonCommon        = "common"
	pwReasonContainsEmail = "contains_email"
)

// pwLimits returns the effective minimum and maximum, defaults filled in.
func (p Policy) pwLimits() (minLen, maxLen int) {
	minLen, maxLen = p.MinLength, p.MaxLength
	if minLen == 0 {
		minLen = pwDefaultMinLength
	}
	if maxLen == 0 {
		maxLen = pwDefaultMaxLength
	}
	return minLen, maxLen
}

// Validate reports whether the policy is usable: MinLength 0 (default) or
// at least 8; MaxLength 0 (default) or between 64 and 1024; the minimum
// not above the maximum. Call it where the policy is configured; Check
// answers INTERNAL for a policy that fails it.
func (p Policy) Validate() error {
	minLen, maxLen := p.pwLimits()
	switch {
	case minLen < pwFloorMinLength:
		return fmt.Errorf("password: password policy: MinLength %d below %d", minLen, pwFloorMinLength)
	case maxLen < pwFloorMaxLength:
		return fmt.Errorf("password: password policy: MaxLength %d below %d", maxLen, pwFloorMaxLength)
	case maxLen > pwMaxBytes:
		return fmt.Errorf("password: password policy: MaxLength %d above %d", maxLen, pwMaxBytes)
	case minLen > maxLen:
		return fmt.Errorf("password: password policy: MinLength %d above MaxLength %d", minLen, maxLen)
	}
	return nil
}

// TooLong reports whether password is over the maximum: more than
// MaxLength code points (an invalid UTF-8 byte counts as one) or more than
// 1024 bytes. It does no hashing and reads at most 1024 bytes of the
// password, so login can refuse absurd inputs before spending an argon2id
// computation on them. For a policy that fails Validate it uses MaxLength
// clamped to [64, 1024].
func (p Policy) TooLong(password string) bool {
	if len(password) > pwMaxBytes {
		return true
	}
	_, maxLen := p.pwLimits()
	maxLen = min(max(maxLen, pwFloorMaxLength), pwMaxBytes)
	return utf8.RuneCountInString(password) > maxLen
}

// Check reports whether password is acceptable as a new password for the
// account with the given email. In order, it refuses with WEAK_PASSWORD
// and Details["reason"]:
//
//   - "too_long" (with "maxLength"; also "maxBytes" when the 1024-byte cap
//     decided): exactly when TooLong;
//   - "invalid_utf8": the password is not valid UTF-8, so its code points
//     cannot be counted or shown back to the user. JSON decoding already
//     replaces such bytes, so only direct callers meet this. It is
//     WEAK_PASSWORD rather than VALIDATION_FAILED because the policy does
//     not know the request field's name, and a client handles every
//     refused password the same way: ask for another;
//   - "too_short" (with "minLength"): fewer than MinLength code points;
//   - "common": in the embedded list of 30,000 common passwords
//     (passwords/common.txt), compared case-insensitively;
//   - "contains_email": equal to or containing, case-insensitively, the
//     local part of email (before the last '@'), or that local part
//     without its "+tag"; only parts of at least 3 code points are
//     checked, so "a@x.com" does not refuse every password with an "a".
//
// Nothing else is refused: all printable characters, spaces and emoji are
// allowed, and the password is not trimmed or normalised. A policy that
// fails Validate answers INTERNAL. The details never quote the password.
func (p Policy) Check(password, email string) error {
	if err := p.Validate(); err != nil {
		return autherr.Wrap(autherr.Internal, err, "")
	}
	minLen, maxLen := p.pwLimits()
	if len(password) > pwMaxBytes {
		return pwWeak(pwReasonTooLong, "password is too long", map[string]any{"maxLength": maxLen, "maxBytes": pwMaxBytes})
	}
	n := utf8.RuneCountInString(password)
	if n > maxLen {
		return pwWeak(pwReasonTooLong, "password is too long", map[string]any{"maxLength": maxLen})
	}
	if !utf8.ValidString(password) {
		return pwWeak(pwReasonInvalidUTF8, "password is not valid UTF-8 text", nil)
	}
	if n < minLen {
		return pwWeak(pwReasonTooShort, "password is too short", map[string]any{"minLength": minLen})
	}
	lower := strings.ToLower(password)
	if pwIsCommon(lower) {
		return pwWeak(pwReasonCommon, "password is too common", nil)
	}
	for _, part := range pwLocalParts(email) {
		if strings.Contains(lower, part) {
			return pwWeak(pwReasonContainsEmail, "password must not contain the email address", nil)
		}
	}
	return nil
}

func pwWeak(reason, msg string, details map[string]any) *autherr.Error {
	d := map[string]any{"reason": reason}
	for k, v := range details {
		d[k] = v
	}
	return &autherr.Error{Code: autherr.WeakPassword, Message: msg, Details: d}
}

// pwLocalParts returns the lower-cased local part of email and, when it
// has a "+tag", the part before it, keeping those of at least
// pwMinLocalPart code points.
func pwLocalParts(email string) []string {
	local := strings.ToLower(strings.TrimSpace(email))
	if i := strings.LastIndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}
	var parts []string
	if utf8.RuneCountInString(local) >= pwMinLocalPart {
		parts = append(parts, local)
	}
	if base, _, ok := strings.Cut(local, "+"); ok && utf8.RuneCountInString(base) >= pwMinLocalPart {
		parts = append(parts, base)
	}
	return parts
}

// pwCommonText is the common-password list: one lower-cased password per
// line. Source and licence: passwords/README.md.
//
//go:embed passwords/common.txt
var pwCommonText string

// pwCommonList is the list sorted, without empty lines, built once on
// first use and never modified. Its strings are substrings of pwCommonText
// (no copy): 16 bytes per entry, where a map of the same entries took
// about 2 MiB more of the heap for the process's lifetime.
var pwCommonList = sync.OnceValue(func() []string {
	list := make([]string, 0, strings.Count(pwCommonText, "\n")+1)
	for line := range strings.Lines(pwCommonText) {
		if w := strings.TrimRight(line, "\r\n"); w != "" {
			list = append(list, w)
		}
	}
	slices.Sort(list)
	return slices.Compact(list)
})

// pwIsCommon reports whether lower, a lower-cased password, is in the
// common-password list.
func pwIsCommon(lower string) bool {
	_, found := slices.BinarySearch(pwCommonList(), lower)
	return found
}
