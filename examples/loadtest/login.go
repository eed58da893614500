package main

import (
	"context"
	"encoding/json"
	"net/http"
)

// loginScenario signs the seeded users in, round robin: one argon2id
// verification per call, so the share of the bare hash bound reached is
// what it reports. Every login starts a session (rows accumulate).
func loginScenario() Scenario {
	return Scenario{
		Name:  "login",
		Help:  "POST /api/v1/auth/login with the seeded users (bound by argon2id; reports the share of the hash bound)",
		Login: true,
		Prepare: func(ctx context.Context, env *Env) (Source, error) {
			accts, err := env.Users(ctx)
			if err != nil {
				return nil, err
			}
			bodies := make([][]byte, len(accts))
			for i, a := range accts {
				if bodies[i], err = json.Marshal(map[string]string{"email": a.Email, "password": a.Password}); err != nil {
					return nil, err
				}
			}
			return SourceFunc(func(slot int) Call {
				return Call{Kind: "login", Method: http.MethodPost, Path: "/api/v1/auth/login",
					Body: bodies[slot%len(bodies)], Want: http.StatusOK}
			}), nil
		},
	}
}
