package apikey_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/mana-how/mana-auth/apikey"
)

var (
	scopeRE = regexp.MustCompile(apikey.ScopePattern)
	keyRE   = regexp.MustCompile(`^sk_live_[0-9A-Za-z]{43}$`)
)

// FuzzNormalizeScopes checks the scope parser against the api.md pattern
// as a regular expression: what it accepts matches, has no repeats, keeps
// every input and stays within 32; what it refuses has a bad scope or too
// many.
func FuzzNormalizeScopes(f *testing.F) {
	for _, seed := range []string{"", "read", "read,write", "deploy:write,read,deploy:write", "Read", "a,", ",a", "a b",
		"a" + strings.Repeat("b", 63), "a" + strings.Repeat("b", 64), "x.y_z-1:2", "1abc", "é", "a\x00", "a\n",
		strings.Repeat("s,", 33), "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,aa,ab,ac,ad,ae,af,ag"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var parts []string
		if in != "" {
			parts = strings.Split(in, ",")
		}
		out, msg := apikey.NormalizeScopes(parts)
		distinct := map[string]bool{}
		allValid := true
		for _, p := range parts {
			distinct[p] = true
			if apikey.ValidScope(p) != scopeRE.MatchString(p) {
				t.Fatalf("ValidScope(%q) = %v, the pattern says %v", p, apikey.ValidScope(p), scopeRE.MatchString(p))
			}
			allValid = allValid && scopeRE.MatchString(p)
		}
		if msg != "" {
			if allValid && len(distinct) <= apikey.MaxScopes {
				t.Fatalf("NormalizeScopes(%q) refused (%s) valid scopes", parts, msg)
			}
			return
		}
		if !allValid || len(distinct) > apikey.MaxScopes {
			t.Fatalf("NormalizeScopes(%q) accepted %q", parts, out)
		}
		if out == nil || len(out) != len(distinct) {
			t.Fatalf("NormalizeScopes(%q) = %q: want the %d distinct scopes", parts, out, len(distinct))
		}
		seen := map[string]bool{}
		for _, s := range out {
			if seen[s] || !distinct[s] {
				t.Fatalf("NormalizeScopes(%q) = %q: repeat or stranger %q", parts, out, s)
			}
			seen[s] = true
		}
	})
}

// FuzzWellFormed checks the key shape check against its regular
// expression.
func FuzzWellFormed(f *testing.F) {
	for _, seed := range []string{"", "sk_live_", "sk_live_" + strings.Repeat("0", 43), "sk_live_" + strings.Repeat("Z", 43),
		"sk_live_" + strings.Repeat("a", 42), "sk_live_" + strings.Repeat("a", 44), "sk_test_" + strings.Repeat("a", 43),
		"sk_live_" + strings.Repeat("a", 42) + "-", "sk_live_" + strings.Repeat("a", 42) + "é"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := apikey.WellFormed(s), keyRE.MatchString(s); got != want {
			t.Fatalf("WellFormed(%q) = %v, want %v", s, got, want)
		}
	})
}
