package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
)

// mixedBlend is the mix of a realistic day: per sign-in, 20 token
// refreshes, 200 token validations (by services) and 50 profile reads.
var mixedBlend = []struct {
	kind   string
	weight int
}{{"login", 1}, {"refresh", 20}, {"validate", 200}, {"profile", 50}}

// mixedScenario blends login, refresh, validate and profile in the ratio
// 1 : 20 : 200 : 50. Every slot owns a session and walks its own shuffled
// cycle of 271 calls (from a different starting point, so the sign-ins
// spread out); a sign-in replaces the slot's session with the new one.
func mixedScenario() Scenario {
	return Scenario{
		Name: "mixed",
		Help: "login : refresh : validate : profile = 1 : 20 : 200 : 50, each slot with its own session",
		Prepare: func(ctx context.Context, env *Env) (Source, error) {
			sessions, err := env.Sessions(ctx, env.slots)
			if err != nil {
				return nil, err
			}
			cycle := mixedCycle()
			pos := make([]int, len(sessions))
			for i := range pos {
				pos[i] = (i * 97) % len(cycle)
			}
			return SourceFunc(func(slot int) Call {
				s := sessions[slot]
				kind := cycle[pos[slot]]
				pos[slot] = (pos[slot] + 1) % len(cycle)
				switch kind {
				case "login":
					return Call{Kind: kind, Method: http.MethodPost, Path: "/api/v1/auth/login", Want: http.StatusOK,
						Body:  mustJSON(map[string]string{"email": s.Account.Email, "password": s.Account.Password}),
						After: func(status int, body []byte) { s.take(status, body) }}
				case "refresh":
					return refreshCall(s)
				case "validate":
					return Call{Kind: kind, Method: http.MethodPost, Path: "/api/v1/auth/validate", Want: http.StatusOK,
						Body: mustJSON(map[string]string{"token": s.Access})}
				default:
					return Call{Kind: kind, Method: http.MethodGet, Path: "/api/v1/auth/profile", Want: http.StatusOK,
						Bearer: s.Access}
				}
			}), nil
		},
	}
}

// mustJSON encodes v, which cannot fail for the maps of strings it gets.
func mustJSON(v map[string]string) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// mixedCycle is one cycle of the blend, shuffled the same way every run.
func mixedCycle() []string {
	var cycle []string
	for _, b := range mixedBlend {
		for range b.weight {
			cycle = append(cycle, b.kind)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2)) // #nosec G404 -- picks the next request of the load mix, reproducibly; nothing secret
	rng.Shuffle(len(cycle), func(i, j int) { cycle[i], cycle[j] = cycle[j], cycle[i] })
	return cycle
}
