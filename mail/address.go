package mail

import (
	netmail "net/mail"
	"strings"
	"unicode/utf8"

	"github.com/mana-how/mana-auth/web"
)

// Canonical trims, validates and lower-cases an address, the form every
// table of mana-auth stores and compares. It answers VALIDATION_FAILED
// naming field ("required", or "not a valid email address") when email is
// empty or not a plain addr-spec with a dotted domain: no display name, no
// comments, at most 254 bytes.
func Canonical(field, email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	bad := func(msg string) error { return web.Invalid(map[string]string{field: msg}) }
	if e == "" {
		return "", bad("required")
	}
	if len(e) > 254 || !utf8.ValidString(e) {
		return "", bad("not a valid email address")
	}
	addr, err := netmail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" || strings.Count(e, "@") != 1 {
		return "", bad("not a valid email address")
	}
	local, domain, _ := strings.Cut(e, "@")
	if local == "" || domain == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", bad("not a valid email address")
	}
	return e, nil
}
