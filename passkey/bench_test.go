package passkey_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/passkey"
)

// The verify benchmarks time one verification against PostgreSQL through
// the service (the handler adds a JSON decode and encode): the options
// call and the authenticator's work happen with the timer stopped.
//
// Registration verify: the recency check, the profile, the challenge
// spend, go-webauthn's attestation verification (packed, self-attested
// ES256) and one transaction with the credential and its event.
// Sign-in verify: the credential lookup, the cooldown check, the lockout
// gate, the challenge spend, the assertion verification (ES256) and the
// transaction that stores the counter and starts the session (session,
// refresh family, attempt row, LOGIN_SUCCESS), plus the access token.

// benchFixture is a fixture whose options limit does not stop a
// benchmark and whose notice mails go nowhere.
func benchFixture(b *testing.B) *pkFixture {
	b.Helper()
	opts, err := lockout.NewMemoryLimiter(lockout.MemoryConfig{Rate: lockout.Rate{Limit: 1_000_000, Period: time.Minute}})
	require.NoError(b, err)
	return newPkFixture(b, pkOptions{limits: passkey.Limits{Options: opts},
		mailer: mail.LogMailer{Logger: slog.New(slog.DiscardHandler)}})
}

var benchClient = manaauth.Client{IP: netip.MustParseAddr("192.0.2.10"), UserAgent: "bench"}

func BenchmarkRegistrationVerify(b *testing.B) {
	p := benchFixture(b)
	u := p.user(b, "bench-register@example.com")
	claims, err := p.Tokens.Verify(u.access)
	require.NoError(b, err)
	sid := uuid.MustParse(claims.SessionID)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		o, err := p.svc.BeginRegistration(ctx, u.id, sid, benchClient)
		require.NoError(b, err)
		raw, err := json.Marshal(o.Options)
		require.NoError(b, err)
		credential := newSoftKey(u.id).create(b, raw)
		b.StartTimer()
		if _, err := p.svc.FinishRegistration(ctx, passkey.Registration{UserID: u.id, SessionID: sid,
			ChallengeID: o.ChallengeID, Credential: credential, Client: benchClient}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignInVerify(b *testing.B) {
	p := benchFixture(b)
	u := p.user(b, "bench-signin@example.com")
	k := newSoftKey(u.id)
	p.register(b, u.access, k)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		o, err := p.svc.BeginSignIn(ctx, u.email, benchClient)
		require.NoError(b, err)
		raw, err := json.Marshal(o.Options)
		require.NoError(b, err)
		assertion := k.get(b, raw)
		b.StartTimer()
		res, err := p.svc.FinishSignIn(ctx, o.ChallengeID, assertion, benchClient)
		if err != nil || res.Tokens == nil {
			b.Fatalf("sign in: %v %+v", err, res)
		}
	}
}
