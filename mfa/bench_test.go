package mfa_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
)

// BenchmarkChallenge is what the second factor adds to every right
// password: one round trip that checks for an active factor and, with
// one, stores the challenge.
func BenchmarkChallenge(b *testing.B) {
	f := newFixture(b, fixtureOptions{})
	with := f.enabled(b, "with@example.com")
	without := f.signUp(b, "without@example.com")
	for _, u := range []*user{with, without} {
		id := uuidOf(b, u.id)
		b.Run(u.email, func(b *testing.B) {
			for b.Loop() {
				_, err := f.challenges.Challenge(bg, id, lockout.Password, manaauth.Client{})
				require.NoError(b, err)
			}
		})
	}
}
