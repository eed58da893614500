package mfa_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/mfa"
)

func TestNewChallengesConfig(t *testing.T) {
	_, err := mfa.NewChallenges(mfa.ChallengesConfig{})
	require.Error(t, err)
	pool := testutil.DB(t).Runtime
	for _, ttl := range []time.Duration{-time.Second, 2 * time.Hour} {
		_, err = mfa.NewChallenges(mfa.ChallengesConfig{Pool: pool, TTL: ttl})
		require.Error(t, err, "TTL %v", ttl)
	}
	_, err = mfa.NewChallenges(mfa.ChallengesConfig{Pool: pool, TTL: time.Hour})
	require.NoError(t, err)
}

// TestChallenge: a challenge only for an active factor; bound to its user
// and the first step's method, stored as a hash, 5 minutes; a passkey
// sign-in without user verification asks for it through
// manaauth.Service.MFAChallenge, and it completes like the password's.
func TestChallenge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.signUp(t, "ch@example.com")
	uid := uuidOf(t, u.id)
	ch, err := f.challenges.Challenge(bg, uid, lockout.Password, manaauth.Client{})
	require.NoError(t, err)
	assert.Nil(t, ch, "no factor: no challenge")
	f.enroll(t, u)
	ch, err = f.Auth.MFAChallenge(bg, uid, lockout.Passkey, manaauth.Client{})
	require.NoError(t, err)
	assert.Nil(t, ch, "a pending factor asks for nothing")
	f.confirm(t, u)
	f.Clock.Advance(30 * time.Second)

	ch, err = f.Auth.MFAChallenge(bg, uid, lockout.Passkey, manaauth.Client{})
	require.NoError(t, err)
	require.NotNil(t, ch)
	assert.Equal(t, []string{"totp", "recovery"}, ch.Methods)
	assert.Len(t, ch.Token, 43, "256 bits, URL-safe base64")
	var method string
	var ttl time.Duration
	require.NoError(t, f.DB.Owner.QueryRow(bg, `SELECT method, expires_at - created_at FROM auth.mfa_challenges
		WHERE token_hash = sha256($1::bytea) AND user_id = $2`, []byte(ch.Token), uid).Scan(&method, &ttl))
	assert.Equal(t, "passkey", method)
	assert.Equal(t, mfa.ChallengeTTL, ttl)

	st, body, _ := f.verify(t, ch.Token, code(rfc6238(u.secret, f.Clock.Now())))
	require.Equal(t, http.StatusOK, st, "%v", body)

	_, err = f.challenges.Challenge(bg, uid, lockout.MFA, manaauth.Client{})
	require.Error(t, err, "a second factor does not ask for a second factor")

	// Old challenges of the user go when a new one is made.
	f.Clock.Advance(2 * time.Hour)
	_, err = f.challenges.Challenge(bg, uid, lockout.Password, manaauth.Client{})
	require.NoError(t, err)
	assert.Equal(t, 1, f.OwnerInt(t, `SELECT count(*) FROM auth.mfa_challenges WHERE user_id = $1`, uid))
	// Another user's factor does not make this one's challenge.
	other, err := f.challenges.Challenge(bg, uuid.New(), lockout.Password, manaauth.Client{})
	require.NoError(t, err)
	assert.Nil(t, other)
}

// TestRowLevelSecurity: the runtime role sees a factor and its recovery
// codes only inside a transaction set to their user; the owner's
// inventory function counts them by KEK without showing a row.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	u := f.enabled(t, "rls@example.com")
	var n int
	require.NoError(t, f.DB.Runtime.QueryRow(bg, `SELECT count(*) FROM auth.mfa_factors`).Scan(&n))
	assert.Zero(t, n, "no user set: no rows")
	require.NoError(t, f.DB.Runtime.QueryRow(bg, `SELECT count(*) FROM auth.mfa_recovery_codes`).Scan(&n))
	assert.Zero(t, n)
	tx, err := f.DB.Runtime.Begin(bg)
	require.NoError(t, err)
	defer func() { require.NoError(t, tx.Rollback(bg)) }()
	_, err = tx.Exec(bg, `SELECT set_config('app.current_user_id', $1, true)`, uuid.NewString())
	require.NoError(t, err)
	require.NoError(t, tx.QueryRow(bg, `SELECT count(*) FROM auth.mfa_factors`).Scan(&n))
	assert.Zero(t, n, "another user: no rows")
	_, err = tx.Exec(bg, `SELECT set_config('app.current_user_id', $1, true)`, u.id)
	require.NoError(t, err)
	require.NoError(t, tx.QueryRow(bg, `SELECT count(*) FROM auth.mfa_recovery_codes`).Scan(&n))
	assert.Equal(t, 10, n, "the user's own rows")
	unknown, err := mfa.UnknownKEKs(bg, f.DB.Runtime, f.keys)
	require.NoError(t, err)
	assert.Empty(t, unknown)
}

// TestRewrap: after a KEK rotation every secret moves to the active KEK
// and still gives the same codes; a secret that does not open stays and
// is reported.
func TestRewrap(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	k1, k2 := newKEK(t, "1"), newKEK(t, "2")
	f := newFixture(t, fixtureOptions{db: db, keys: ringOf(t, k1)})
	var users []*user
	for _, e := range []string{"r1@example.com", "r2@example.com", "r3@example.com"} {
		users = append(users, f.enabled(t, e))
	}
	// "2" is the new active KEK; "1" stays for reading.
	both := ringOf(t, k2, k1)
	moved, err := mfa.Rewrap(bg, db.Runtime, both, nil, 2)
	require.NoError(t, err)
	assert.Equal(t, 3, moved)
	assert.Equal(t, 3, f.OwnerInt(t, `SELECT count(*) FROM auth.mfa_factors WHERE kek_id = '2'`))
	moved, err = mfa.Rewrap(bg, db.Runtime, both, nil, 2)
	require.NoError(t, err)
	assert.Zero(t, moved, "idempotent")

	// Only the new KEK now: the secrets still open and sign in.
	g := newFixture(t, fixtureOptions{db: db, keys: ringOf(t, k2)})
	g.Clock.Advance(f.Clock.Now().Sub(g.Clock.Now()))
	for _, u := range users {
		st, body, _ := g.verify(t, g.challenge(t, u), code(rfc6238(u.secret, g.Clock.Now())))
		require.Equal(t, http.StatusOK, st, "%s: %v", u.email, body)
	}
	_, err = mfa.Rewrap(bg, db.Runtime, both, nil, 0)
	require.Error(t, err)
	// A secret under a KEK nobody holds any more stays and is reported.
	_, err = db.Owner.Exec(bg, `UPDATE auth.mfa_factors SET kek_id = 'lost' WHERE user_id = $1`, users[0].id)
	require.NoError(t, err)
	moved, err = mfa.Rewrap(bg, db.Runtime, both, f.Logger, 10)
	require.Error(t, err)
	assert.Zero(t, moved)
	unknown, err := mfa.UnknownKEKs(bg, db.Runtime, both)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"lost": 1}, unknown)
	assert.ErrorContains(t, mfa.UnknownKEKsError(unknown, both.IDs()), `"lost" (1 factors)`)
	assert.NoError(t, mfa.UnknownKEKsError(nil, both.IDs()))
}
