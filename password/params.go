package password

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseParams reads argon2id parameters written as in a PHC string,
// "m=19456,t=2,p=1" (memory in KiB, passes, lanes; any order, each at most
// once). A parameter left out takes its default (see Params); the result
// is complete and valid for NewHasher. A host reads its configuration with
// it, e.g. the reference server's MANA_AUTH_ARGON2ID.
func ParseParams(s string) (Params, error) {
	var p Params
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || seen[k] {
			return Params{}, fmt.Errorf("password: argon2id parameters %q: want m=KiB,t=passes,p=lanes", s)
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return Params{}, fmt.Errorf("password: argon2id parameters %q: %s=%q is not a positive integer", s, k, v)
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return Params{}, fmt.Errorf("password: argon2id parameters %q: p=%d above 255", s, n)
			}
			p.Threads = uint8(n)
		default:
			return Params{}, fmt.Errorf("password: argon2id parameters %q: unknown parameter %q (m, t and p are)", s, k)
		}
	}
	p = p.pwWithDefaults()
	if err := p.pwValidate(); err != nil {
		return Params{}, fmt.Errorf("password: argon2id parameters %q: %w", s, err)
	}
	return p, nil
}

// String writes the parameters as ParseParams reads them; zero fields are
// shown with their defaults.
func (p Params) String() string {
	p = p.pwWithDefaults()
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

// owaspMinimums are the argon2id configurations of the OWASP Password
// Storage Cheat Sheet, (memory KiB, passes), each at one lane; ASVS 5.0
// names the first two.
var owaspMinimums = [][2]uint32{{46 * 1024, 1}, {19 * 1024, 2}, {12 * 1024, 3}, {9 * 1024, 4}, {7 * 1024, 5}}

// MeetsOWASP reports whether the parameters (zero fields at their
// defaults) cost at least one of OWASP's minimum configurations in both
// memory and passes. Hosts warn when they run below it.
func (p Params) MeetsOWASP() bool {
	p = p.pwWithDefaults()
	for _, m := range owaspMinimums {
		if p.Memory >= m[0] && p.Time >= m[1] {
			return true
		}
	}
	return false
}
