package main

import (
	"context"
	"encoding/json"
	"net/http"
)

// refreshScenario rotates refresh tokens the way a client does: every slot
// owns a session and spends its refresh token once, then continues with
// the child it got back.
func refreshScenario() Scenario {
	return Scenario{
		Name: "refresh",
		Help: "POST /api/v1/auth/refresh, chained: each slot spends its own token once and continues with the child",
		Prepare: func(ctx context.Context, env *Env) (Source, error) {
			sessions, err := env.Sessions(ctx, env.slots)
			if err != nil {
				return nil, err
			}
			return SourceFunc(func(slot int) Call { return refreshCall(sessions[slot]) }), nil
		},
	}
}

// refreshCall spends s's refresh token; on success s continues with the
// new pair. On a failure s keeps its token: a lost answer is retried with
// the spent token, which the server's grace window answers with the same
// child.
func refreshCall(s *Session) Call {
	return Call{Kind: "refresh", Method: http.MethodPost, Path: "/api/v1/auth/refresh", Want: http.StatusOK,
		Body:  mustJSON(map[string]string{"refreshToken": s.Refresh}),
		After: func(status int, body []byte) { s.take(status, body) }}
}

// take continues s with the pair of a successful answer.
func (s *Session) take(status int, body []byte) {
	if status != http.StatusOK {
		return
	}
	var p tokenPair
	if json.Unmarshal(body, &p) == nil && p.AccessToken != "" && p.RefreshToken != "" {
		s.Access, s.Refresh = p.AccessToken, p.RefreshToken
	}
}
