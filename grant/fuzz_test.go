package grant_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mana-how/mana-auth/grant"
)

// FuzzUnwrap feeds arbitrary bytes to UnwrapJSON: it must never panic, and
// its answer is either a 32-byte key or a refusal with one of the four
// reasons (the static keys used here cannot be unavailable).
func FuzzUnwrap(f *testing.F) {
	fx := newFixture(f, fixtureOpts{})
	valid := fx.issue(f, "mission-42", time.Hour)
	seeds := [][]byte{marshal(f, valid), nil, []byte("{}"), []byte("null"), []byte(`{"wrappedKey":1}`)}
	for _, edit := range []func(g *grant.Grant){
		func(g *grant.Grant) { g.MissionID = "mission-43" },
		func(g *grant.Grant) { g.WrappedKey = g.WrappedKey[:40] },
		func(g *grant.Grant) { g.Signature = "" },
		func(g *grant.Grant) { g.Derivation.KDF = "HKDF-SHA512" },
		func(g *grant.Grant) { g.UserID = strings.ToUpper(g.UserID) },
		func(g *grant.Grant) { g.ExpiresAt = time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC) },
	} {
		g := *valid
		edit(&g)
		seeds = append(seeds, marshal(f, &g))
	}
	// A valid document with its signature redone after an edit of the
	// ciphertext reaches the RSA step.
	g := *valid
	g.WrappedKey = "AAAA" + g.WrappedKey[4:]
	fx.resign(&g)
	seeds = append(seeds, marshal(f, &g))
	for _, s := range seeds {
		f.Add(s)
	}
	known := map[grant.Reason]bool{grant.ReasonNotConfigured: true, grant.ReasonExpired: true,
		grant.ReasonMalformed: true, grant.ReasonWrapRejected: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := fx.unwrapper.UnwrapJSON(context.Background(), data)
		if err == nil {
			if len(key) != grant.KeySize {
				t.Fatalf("UnwrapJSON(%q) returned a %d-byte key", data, len(key))
			}
			var g grant.Grant
			if jerr := json.Unmarshal(data, &g); jerr != nil {
				t.Fatalf("UnwrapJSON(%q) accepted input json.Unmarshal refuses: %v", data, jerr)
			}
			return
		}
		if key != nil {
			t.Fatalf("UnwrapJSON(%q) returned a key with error %v", data, err)
		}
		if r := grant.ReasonOf(err); !known[r] {
			t.Fatalf("UnwrapJSON(%q): error %v has reason %q", data, err, r)
		}
	})
}
