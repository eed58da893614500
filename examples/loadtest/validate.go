package main

import (
	"context"
	"encoding/json"
	"net/http"
)

// validateScenario checks access tokens: no database at all.
func validateScenario() Scenario {
	return Scenario{
		Name: "validate",
		Help: "POST /api/v1/auth/validate (JWT signature and claims only, no database)",
		Prepare: func(ctx context.Context, env *Env) (Source, error) {
			accts, err := env.Users(ctx)
			if err != nil {
				return nil, err
			}
			bodies := make([][]byte, len(accts))
			for i, a := range accts {
				if bodies[i], err = json.Marshal(map[string]string{"token": a.First.Access}); err != nil {
					return nil, err
				}
			}
			return SourceFunc(func(slot int) Call {
				return Call{Kind: "validate", Method: http.MethodPost, Path: "/api/v1/auth/validate",
					Body: bodies[slot%len(bodies)], Want: http.StatusOK}
			}), nil
		},
	}
}
