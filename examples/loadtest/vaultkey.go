package main

import (
	"context"
	"net/http"
)

// vaultKeyScenario reads the caller's vault key after init: each answer
// writes its audit row.
func vaultKeyScenario() Scenario {
	return Scenario{
		Name: "vault-key",
		Help: "GET /api/v1/me/encryption-vault/key after init (one audit row per key handed out)",
		Prepare: func(ctx context.Context, env *Env) (Source, error) {
			accts, err := env.Users(ctx)
			if err != nil {
				return nil, err
			}
			if err := env.InitVaults(ctx); err != nil {
				return nil, err
			}
			return SourceFunc(func(slot int) Call {
				return Call{Kind: "vault-key", Method: http.MethodGet, Path: "/api/v1/me/encryption-vault/key",
					Bearer: accts[slot%len(accts)].First.Access, Want: http.StatusOK}
			}), nil
		},
	}
}
