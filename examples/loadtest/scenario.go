package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// A Scenario is one kind of load. Adding one is a small file: a function
// returning the Scenario (see profile.go for the shortest) and a line in
// scenarios below.
type Scenario struct {
	// Name is what -scenario takes.
	Name string
	// Help is one line for the usage text.
	Help string
	// Login marks scenarios bound by the password hash: the harness
	// measures the bare hash bound before the run and reports the share
	// reached.
	Login bool
	// Prepare seeds, through the API, what the scenario needs (env.Users,
	// env.Sessions, vaults) and returns the source of the calls. It runs
	// before the measured phase.
	Prepare func(ctx context.Context, env *Env) (Source, error)
}

// A Source yields the next call of a slot. A slot is a closed-loop worker,
// or in the open loop one of the -c leases a request holds while it is in
// flight: two calls of one slot never overlap, so a slot may own state
// such as a refresh-token chain without a lock. Next and Call.After of
// different slots run concurrently.
type Source interface {
	Next(slot int) Call
}

// SourceFunc adapts a function to Source.
type SourceFunc func(slot int) Call

// Next calls f.
func (f SourceFunc) Next(slot int) Call { return f(slot) }

// Call is one HTTP request of a scenario.
type Call struct {
	// Kind labels the call in the report (mixed reports each kind).
	Kind   string
	Method string
	Path   string // below the target URL, e.g. /api/v1/auth/login
	Body   []byte // JSON; nil for none
	Bearer string // access token; "" for none
	// Want is the status of success; anything else is counted by status
	// and error code.
	Want int
	// After, when set, sees the answer (status 0 when the request failed
	// in transport) before the slot is used again: the refresh chain takes
	// its child token here.
	After func(status int, body []byte)
}

// scenarios lists every scenario, in the order of the usage text.
func scenarios() []Scenario {
	return []Scenario{
		loginScenario(),
		profileScenario(),
		validateScenario(),
		refreshScenario(),
		vaultKeyScenario(),
		mixedScenario(),
		passkeyLoginScenario(),
	}
}

// lookupScenario finds a scenario by name.
func lookupScenario(name string) (Scenario, error) {
	all := scenarios()
	i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == name })
	if i < 0 {
		names := make([]string, len(all))
		for j, s := range all {
			names[j] = s.Name
		}
		if name == "" {
			return Scenario{}, fmt.Errorf("-scenario is required: one of %s", strings.Join(names, ", "))
		}
		return Scenario{}, fmt.Errorf("-scenario %q: unknown; one of %s", name, strings.Join(names, ", "))
	}
	return all[i], nil
}
