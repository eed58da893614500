package mfa_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/mfa"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	ok := mfa.Config{Pool: f.Pool, Accounts: f.Auth, Keys: f.keys, Mailer: mail.LogMailer{}}
	for name, mutate := range map[string]func(c *mfa.Config){
		"no pool":     func(c *mfa.Config) { c.Pool = nil },
		"no accounts": func(c *mfa.Config) { c.Accounts = nil },
		"no keys":     func(c *mfa.Config) { c.Keys = nil },
		"no mailer":   func(c *mfa.Config) { c.Mailer = nil },
	} {
		c := ok
		mutate(&c)
		_, err := mfa.New(c)
		require.Error(t, err, name)
	}
	svc, err := mfa.New(ok)
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	_, err = mfa.NewHandler(svc, mfa.HandlerOptions{})
	require.Error(t, err, "a handler needs the token verifier")
	_, err = mfa.NewHandler(svc, mfa.HandlerOptions{Tokens: f.Tokens})
	require.NoError(t, err)
}
