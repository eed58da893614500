package main

import (
	"context"
	"net/http"
)

// profileScenario reads the caller's profile: the bearer check and one
// indexed query.
func profileScenario() Scenario {
	return Scenario{
		Name: "profile",
		Help: "GET /api/v1/auth/profile (JWT check and one database read)",
		Prepare: func(ctx context.Context, env *Env) (Source, error) {
			accts, err := env.Users(ctx)
			if err != nil {
				return nil, err
			}
			return SourceFunc(func(slot int) Call {
				return Call{Kind: "profile", Method: http.MethodGet, Path: "/api/v1/auth/profile",
					Bearer: accts[slot%len(accts)].First.Access, Want: http.StatusOK}
			}), nil
		},
	}
}
