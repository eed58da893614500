package grantpg_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/grant"
	"github.com/mana-how/mana-auth/grant/grantpg"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/migrate"
)

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func newUser(t testing.TB, db *testutil.Database) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := db.Owner.Exec(context.Background(), `INSERT INTO auth.users (id, email) VALUES ($1, $2)`,
		id, id.String()+"@example.test")
	require.NoError(t, err)
	return id
}

func newStore(t testing.TB, pool *pgxpool.Pool) *grantpg.Store {
	t.Helper()
	s, err := grantpg.New(grantpg.Config{Pool: pool, Now: func() time.Time { return testNow }})
	require.NoError(t, err)
	return s
}

func ownerCount(t testing.TB, db *testutil.Database, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Owner.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// asUser runs fn as the runtime role in a transaction whose
// app.current_user_id is userID.
func asUser(t testing.TB, pool *pgxpool.Pool, userID uuid.UUID, fn func(tx pgx.Tx) error) error {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }() // after Commit a no-op; the test's error is what matters
	if _, err := tx.Exec(ctx, "SELECT set_config('app.current_user_id', $1, true)", userID.String()); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func sqlState(t testing.TB, err error) string {
	t.Helper()
	var pg *pgconn.PgError
	require.ErrorAs(t, err, &pg)
	return pg.Code
}

func TestRecordAndListAsTheRuntimeRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	var role string
	require.NoError(t, db.Runtime.QueryRow(ctx, `SELECT current_user`).Scan(&role))
	require.Equal(t, migrate.RuntimeRole, role)

	s := newStore(t, db.Runtime)
	alice := newUser(t, db)
	exp := testNow.Add(time.Hour)
	require.NoError(t, s.RecordUnwrap(ctx, grant.Attempt{UserID: alice, MissionID: "m1", SignatureKID: "kid-1",
		ExpiresAt: exp, Outcome: grant.OutcomeUnwrapped, At: testNow}))
	require.NoError(t, s.RecordUnwrap(ctx, grant.Attempt{UserID: alice, MissionID: "m1", SignatureKID: "kid-1",
		ExpiresAt: exp, Outcome: grant.OutcomeRefused, Reason: grant.ReasonExpired, At: testNow.Add(time.Second)}))
	require.NoError(t, s.RecordUnwrap(ctx, grant.Attempt{UserID: alice, Outcome: grant.OutcomeRefused,
		Reason: grant.ReasonWrapRejected})) // no time: the store's clock

	rows, err := s.List(ctx, alice, 10)
	require.NoError(t, err)
	require.Len(t, rows, 3)
	assert.Equal(t, grant.OutcomeRefused, rows[0].Outcome, "newest first")
	assert.Equal(t, grant.ReasonExpired, rows[0].Reason)
	// The other two share a time; the later id comes first.
	assert.Equal(t, grantpg.Row{ID: rows[1].ID, UserID: alice, Outcome: grant.OutcomeRefused,
		Reason: grant.ReasonWrapRejected, AttemptedAt: testNow}, utc(rows[1]), "optional values read back as zero (stored NULL)")
	assert.Equal(t, grantpg.Row{ID: rows[2].ID, UserID: alice, MissionID: "m1", SignatureKID: "kid-1", ExpiresAt: exp,
		Outcome: grant.OutcomeUnwrapped, AttemptedAt: testNow}, utc(rows[2]))
	assert.Greater(t, rows[1].ID, rows[2].ID)
	assert.Equal(t, 2, ownerCount(t, db, `SELECT count(*) FROM mana_ai.decrypt_audit
		WHERE mission_id IS NULL OR signature_kid IS NULL OR expires_at IS NULL OR reason IS NULL`),
		"absent values are NULL, not empty strings")
}

func utc(r grantpg.Row) grantpg.Row {
	r.AttemptedAt = r.AttemptedAt.UTC()
	if !r.ExpiresAt.IsZero() {
		r.ExpiresAt = r.ExpiresAt.UTC()
	}
	return r
}

func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	s := newStore(t, db.Runtime)
	alice, bob := newUser(t, db), newUser(t, db)
	for _, u := range []uuid.UUID{alice, alice, bob} {
		require.NoError(t, s.RecordUnwrap(ctx, grant.Attempt{UserID: u, Outcome: grant.OutcomeRefused, Reason: grant.ReasonMalformed}))
	}
	// A grant naming no user, or a user that does not exist: kept, owned by nobody.
	ghost := uuid.New()
	require.NoError(t, s.RecordUnwrap(ctx, grant.Attempt{Outcome: grant.OutcomeRefused, Reason: grant.ReasonMalformed}))
	require.NoError(t, s.RecordUnwrap(ctx, grant.Attempt{UserID: ghost, Outcome: grant.OutcomeRefused, Reason: grant.ReasonWrapRejected}))
	require.Equal(t, 5, ownerCount(t, db, `SELECT count(*) FROM mana_ai.decrypt_audit`))
	require.Equal(t, 2, ownerCount(t, db, `SELECT count(*) FROM mana_ai.decrypt_audit WHERE user_id IS NULL`))

	var forced bool
	require.NoError(t, db.Owner.QueryRow(ctx, `SELECT relforcerowsecurity FROM pg_class WHERE oid = 'mana_ai.decrypt_audit'::regclass`).Scan(&forced))
	assert.True(t, forced, "FORCE ROW LEVEL SECURITY")

	// Without the setting the runtime role sees nothing.
	var n int
	require.NoError(t, db.Runtime.QueryRow(ctx, `SELECT count(*) FROM mana_ai.decrypt_audit`).Scan(&n))
	assert.Zero(t, n, "rows visible without app.current_user_id")

	// As alice: her two rows, none of bob's, none of nobody's.
	count := func(user uuid.UUID) int {
		var n int
		require.NoError(t, asUser(t, db.Runtime, user, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM mana_ai.decrypt_audit`).Scan(&n)
		}))
		return n
	}
	assert.Equal(t, 2, count(alice))
	assert.Equal(t, 1, count(bob))
	assert.Equal(t, 0, count(ghost))
	rows, err := s.List(ctx, bob, 0)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, bob, rows[0].UserID)

	// Appending under another user's name, or an ownerless row while a
	// user is set, is refused by the policy.
	for name, target := range map[string]any{"bob's row as alice": bob, "ownerless row as alice": nil} {
		err := asUser(t, db.Runtime, alice, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO mana_ai.decrypt_audit (user_id, outcome, reason, attempted_at)
				VALUES ($1, 'refused', 'malformed', now())`, target)
			return err
		})
		assert.Equal(t, "42501", sqlState(t, err), name)
	}
}

// TestAppendOnly: the runtime role can neither change nor delete a row,
// not even its own user's.
func TestAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	s := newStore(t, db.Runtime)
	alice := newUser(t, db)
	require.NoError(t, s.RecordUnwrap(ctx, grant.Attempt{UserID: alice, MissionID: "m", Outcome: grant.OutcomeRefused, Reason: grant.ReasonExpired}))
	for _, stmt := range []string{
		`UPDATE mana_ai.decrypt_audit SET outcome = 'unwrapped', reason = NULL`,
		`DELETE FROM mana_ai.decrypt_audit`,
		`TRUNCATE mana_ai.decrypt_audit`,
	} {
		err := asUser(t, db.Runtime, alice, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, stmt)
			return err
		})
		assert.Equal(t, "42501", sqlState(t, err), stmt)
	}
	assert.Equal(t, 1, ownerCount(t, db, `SELECT count(*) FROM mana_ai.decrypt_audit WHERE outcome = 'refused'`))

	// Negative control: the owner can, so the refusals are the grants'.
	tag, err := db.Owner.Exec(ctx, `UPDATE mana_ai.decrypt_audit SET attempted_at = attempted_at`)
	require.NoError(t, err)
	assert.EqualValues(t, 1, tag.RowsAffected())

	// The user's rows go with the user.
	_, err = db.Owner.Exec(ctx, `DELETE FROM auth.users WHERE id = $1`, alice)
	require.NoError(t, err)
	assert.Zero(t, ownerCount(t, db, `SELECT count(*) FROM mana_ai.decrypt_audit`))
}

func TestConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	s := newStore(t, db.Runtime)
	alice := newUser(t, db)
	for name, a := range map[string]grant.Attempt{
		"unknown outcome":           {UserID: alice, Outcome: "maybe"},
		"refused without a reason":  {UserID: alice, Outcome: grant.OutcomeRefused},
		"unwrapped with a reason":   {UserID: alice, MissionID: "m", SignatureKID: "k", ExpiresAt: testNow, Outcome: grant.OutcomeUnwrapped, Reason: grant.ReasonExpired},
		"unwrapped without mission": {UserID: alice, SignatureKID: "k", ExpiresAt: testNow, Outcome: grant.OutcomeUnwrapped},
		"unknown reason":            {UserID: alice, Outcome: grant.OutcomeRefused, Reason: "bored"},
	} {
		err := s.RecordUnwrap(ctx, a)
		assert.Equal(t, "23514", sqlState(t, err), name)
	}
	assert.Zero(t, ownerCount(t, db, `SELECT count(*) FROM mana_ai.decrypt_audit`))
	_, err := grantpg.New(grantpg.Config{})
	assert.Error(t, err)
}

// TestUnwrapperWritesOneRowPerAttempt: grant.Unwrapper with the store as
// its Auditor, as an AI service runs it.
func TestUnwrapperWritesOneRowPerAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	s := newStore(t, db.Runtime)
	alice := newUser(t, db)

	pemBytes, err := os.ReadFile("../testdata/rsa2048.pem")
	require.NoError(t, err)
	priv, err := grant.ParsePrivateKeyPEM(pemBytes)
	require.NoError(t, err)
	signing := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	keys, err := grant.NewStaticKeys(grant.VerifyKey{Public: signing.Public().(ed25519.PublicKey)})
	require.NoError(t, err)
	now := testNow
	clock := func() time.Time { return now }
	iss, err := grant.NewIssuer(grant.IssuerConfig{PublicKey: &priv.PublicKey, Signer: signer(signing), Now: clock,
		Keys: grant.KeySourceFunc(func(context.Context, uuid.UUID) ([]byte, error) { return make([]byte, 32), nil })})
	require.NoError(t, err)
	u, err := grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKey: priv, Keys: keys, Auditor: s, Now: clock})
	require.NoError(t, err)

	g, err := iss.Issue(ctx, grant.Request{UserID: alice, MissionID: "mission-42"})
	require.NoError(t, err)
	_, err = u.Unwrap(ctx, g)
	require.NoError(t, err)
	edited := *g
	edited.MissionID = "mission-43"
	_, err = u.Unwrap(ctx, &edited)
	require.ErrorIs(t, err, &grant.Failure{Reason: grant.ReasonWrapRejected})
	_, err = u.UnwrapJSON(ctx, []byte("not json"))
	require.ErrorIs(t, err, &grant.Failure{Reason: grant.ReasonMalformed})

	rows, err := s.List(ctx, alice, 10)
	require.NoError(t, err)
	require.Len(t, rows, 2, "alice sees her two attempts")
	byMission := map[string]grantpg.Row{}
	for _, r := range rows {
		byMission[r.MissionID] = r
	}
	ok := byMission["mission-42"]
	assert.Equal(t, grant.OutcomeUnwrapped, ok.Outcome)
	assert.Equal(t, g.SignatureKID, ok.SignatureKID)
	assert.True(t, g.ExpiresAt.Equal(ok.ExpiresAt))
	assert.Equal(t, grant.ReasonWrapRejected, byMission["mission-43"].Reason)
	assert.Equal(t, 1, ownerCount(t, db, `SELECT count(*) FROM mana_ai.decrypt_audit WHERE user_id IS NULL AND reason = 'malformed'`))

	// With the audit store unreachable no key is released.
	closed := db.Pool(t, true, nil)
	closed.Close()
	broken, err := grantpg.New(grantpg.Config{Pool: closed})
	require.NoError(t, err)
	u2, err := grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKey: priv, Keys: keys, Auditor: broken, Now: clock})
	require.NoError(t, err)
	key, err := u2.Unwrap(ctx, g)
	assert.Nil(t, key)
	require.Error(t, err)
	assert.Empty(t, grant.ReasonOf(err))
	assert.False(t, errors.Is(err, &grant.Failure{Reason: grant.ReasonWrapRejected}))
}

type signer ed25519.PrivateKey

func (s signer) Sign(msg []byte) ([]byte, string) {
	k := ed25519.PrivateKey(s)
	return ed25519.Sign(k, msg), grant.Thumbprint(k.Public().(ed25519.PublicKey))
}
