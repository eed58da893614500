package lockout_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/gdpr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
)

// accounts writes auth.users rows as manaauth does (times from the fake
// clock), so the history trigger sees what it sees in production.
type accounts struct {
	t  testing.TB
	db *testutil.Database
	c  *clock
}

func (a accounts) create(email string) uuid.UUID {
	a.t.Helper()
	var id uuid.UUID
	require.NoError(a.t, a.db.Runtime.QueryRow(context.Background(), `INSERT INTO auth.users (email, created_at, updated_at)
		VALUES ($1, $2, $2) RETURNING id`, email, a.c.Now()).Scan(&id))
	return id
}

func (a accounts) changeEmail(id uuid.UUID, email string) {
	a.t.Helper()
	_, err := a.db.Runtime.Exec(context.Background(), `UPDATE auth.users SET email = $2, updated_at = $3 WHERE id = $1`, id, email, a.c.Now())
	require.NoError(a.t, err)
}

func (a accounts) delete(id uuid.UUID) {
	a.t.Helper()
	_, err := a.db.Runtime.Exec(context.Background(), `DELETE FROM auth.users WHERE id = $1`, id)
	require.NoError(a.t, err)
}

// inTx runs fn in a transaction of the runtime role.
func inTx(t testing.TB, db *testutil.Database, fn func(pgx.Tx) error) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(context.Background(), db.Runtime, fn))
}

func addresses(t testing.TB, db *testutil.Database, g *lockout.Service, id uuid.UUID) []string {
	t.Helper()
	var out []string
	inTx(t, db, func(tx pgx.Tx) error {
		var err error
		out, err = g.Addresses(context.Background(), tx, id)
		return err
	})
	return out
}

// TestTheAddressHistoryFollowsEveryWriter: registration and every change
// of the address, by whatever statement, are recorded with the times of
// the account row; the runtime role can read the history but not write
// it.
func TestTheAddressHistoryFollowsEveryWriter(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	c := newClock()
	a := accounts{t, db, c}
	g := newGate(t, db.Runtime, c.Now)
	id := a.create("first@example.test")
	registered := c.Now()
	c.Advance(time.Hour)
	a.changeEmail(id, "second@example.test")
	changed := c.Now()
	c.Advance(time.Hour)
	a.changeEmail(id, "first@example.test") // back to the first
	_, err := db.Runtime.Exec(context.Background(), `UPDATE auth.users SET name = 'n', updated_at = $2 WHERE id = $1`, id, c.Now())
	require.NoError(t, err)

	type held struct {
		Email string
		From  time.Time
		Until *time.Time
	}
	rows, err := db.Owner.Query(context.Background(), `SELECT email, held_from, held_until FROM auth.user_emails WHERE user_id = $1 ORDER BY id`, id)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[held])
	require.NoError(t, err)
	require.Len(t, got, 3, "a change of another column records nothing")
	assert.Equal(t, "first@example.test", got[0].Email)
	assert.True(t, registered.Equal(got[0].From))
	require.NotNil(t, got[0].Until)
	assert.True(t, changed.Equal(*got[0].Until))
	assert.Equal(t, "second@example.test", got[1].Email)
	assert.True(t, changed.Equal(got[1].From))
	assert.Nil(t, got[2].Until, "the address held now has no end")
	assert.Equal(t, []string{"first@example.test", "second@example.test"}, addresses(t, db, g, id), "the current address first, each once")

	_, err = db.Runtime.Exec(context.Background(), `INSERT INTO auth.user_emails (user_id, email, held_from) VALUES ($1, 'forged@example.test', now())`, id)
	var pg *pgconn.PgError
	require.ErrorAs(t, err, &pg, "the runtime role only reads the history")
	assert.Equal(t, "42501", pg.Code)

	a.delete(id)
	assert.Zero(t, count(t, db.Owner, `SELECT count(*) FROM auth.user_emails`), "the history goes with the account")
}

// TestAttemptsAreAttributedByWhoHeldTheAddress: alice held old@ and left
// it, bob took it. Alice's export has the attempts on old@ made while she
// held it and none of bob's; bob's has his own and those made while
// nobody held old@, not alice's; old@'s lockout counter is bob's alone.
// Attributing by address alone (ignoring who held it when) gives bob
// alice's attempt, or leaves alice's attempt behind when she is erased.
func TestAttemptsAreAttributedByWhoHeldTheAddress(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	c := newClock()
	a := accounts{t, db, c}
	g := newGate(t, db.Runtime, c.Now)
	attempt := func(email string) {
		t.Helper()
		require.ErrorIs(t, try(t, g, email, wrongPassword), wrongPassword)
		c.Advance(time.Minute)
	}

	attempt("old@example.test") // before anybody held old@
	alice := a.create("old@example.test")
	c.Advance(time.Minute)
	attempt("old@example.test") // alice's
	attempt("new@example.test") // before alice held new@: nobody's, then alice's
	a.changeEmail(alice, "new@example.test")
	c.Advance(time.Minute)
	attempt("old@example.test") // nobody holds old@ now
	attempt("new@example.test") // alice's
	assert.Equal(t, []string{"new@example.test", "old@example.test"}, addresses(t, db, g, alice))

	bob := a.create("old@example.test")
	c.Advance(time.Minute)
	attempt("old@example.test") // bob's
	assert.Equal(t, []string{"new@example.test"}, addresses(t, db, g, alice), "old@ is bob's now")
	assert.Equal(t, []string{"old@example.test"}, addresses(t, db, g, bob))

	exported := func(id uuid.UUID) map[string][]map[string]any {
		t.Helper()
		var out map[string][]map[string]any
		inTx(t, db, func(tx pgx.Tx) error {
			out = exportSections(t, tx, g, id)
			return nil
		})
		return out
	}
	times := func(rows []map[string]any, email string) int {
		n := 0
		for _, r := range rows {
			if r["email"] == email {
				n++
			}
		}
		return n
	}
	al := exported(alice)
	assert.Equal(t, 2, times(al["auth.login_attempts"], "new@example.test"), "%v", al["auth.login_attempts"])
	assert.Equal(t, 1, times(al["auth.login_attempts"], "old@example.test"), "the one made while alice held old@")
	assert.Len(t, al["auth.lockouts"], 1)
	assert.Len(t, al["auth.user_emails"], 2)
	bo := exported(bob)
	assert.Equal(t, 3, times(bo["auth.login_attempts"], "old@example.test"),
		"bob's own and the two made while nobody held old@, not alice's: %v", bo["auth.login_attempts"])

	// Erasing alice leaves bob's rows alone.
	inTx(t, db, func(tx pgx.Tx) error {
		return g.EraseData(context.Background(), tx, gdpr.Subject{UserID: alice, Emails: addresses(t, db, g, alice)})
	})
	assert.Zero(t, count(t, db.Owner, `SELECT count(*) FROM auth.login_attempts WHERE email = 'new@example.test'`))
	assert.Zero(t, count(t, db.Owner, `SELECT count(*) FROM auth.lockouts WHERE email = 'new@example.test'`))
	assert.Equal(t, 3, count(t, db.Owner, `SELECT count(*) FROM auth.login_attempts WHERE email = 'old@example.test'`),
		"alice's attempt on old@ went with her, bob's three stay")
	assert.Equal(t, 1, count(t, db.Owner, `SELECT count(*) FROM auth.lockouts WHERE email = 'old@example.test'`))
}

// exportSections runs ExportData into a buffer and decodes the sections.
func exportSections(t testing.TB, tx pgx.Tx, g *lockout.Service, id uuid.UUID) map[string][]map[string]any {
	t.Helper()
	var b strings.Builder
	emails, err := g.Addresses(context.Background(), tx, id)
	require.NoError(t, err)
	w := gdpr.NewWriter(&b)
	require.NoError(t, g.ExportData(context.Background(), tx, gdpr.Subject{UserID: id, Emails: emails}, w))
	require.NoError(t, w.Flush())
	var out map[string][]map[string]any
	require.NoError(t, json.Unmarshal([]byte("{"+b.String()+"}"), &out), b.String())
	return out
}

// TestErasureAnonymisesTheEvents: the events keep type and time and lose
// user id, address, user agent and metadata. The runtime role itself can
// neither change nor delete an event, nor delete an attempt: only the
// erasure function (running as the owner) does, so both logs stay
// append-only for it.
func TestErasureAnonymisesTheEvents(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	c := newClock()
	a := accounts{t, db, c}
	g := newGate(t, db.Runtime, c.Now)
	id := a.create("anon@example.test")
	tk, err := g.Begin(context.Background(), lockout.Attempt{Email: "anon@example.test", Method: lockout.Password,
		IP: netip.MustParseAddr("203.0.113.9"), UserAgent: "agent/1"})
	require.NoError(t, err)
	require.NoError(t, tk.Finish(context.Background(), id, nil))
	require.Equal(t, 1, count(t, db.Owner, `SELECT count(*) FROM auth.security_events WHERE user_id = $1 AND ip_address IS NOT NULL`, id))

	for name, sql := range map[string]string{
		"another user":   `UPDATE auth.security_events SET user_id = gen_random_uuid() WHERE user_id = $1`,
		"another type":   `UPDATE auth.security_events SET event_type = 'LOGOUT' WHERE user_id = $1`,
		"another time":   `UPDATE auth.security_events SET created_at = now() WHERE user_id = $1`,
		"other metadata": `UPDATE auth.security_events SET metadata = '{}' WHERE user_id = $1`,
		"delete":         `DELETE FROM auth.security_events WHERE user_id = $1`,
		"attempts":       `DELETE FROM auth.login_attempts WHERE $1::uuid IS NOT NULL`,
	} {
		_, err := db.Runtime.Exec(context.Background(), sql, id)
		assert.Error(t, err, name)
	}

	inTx(t, db, func(tx pgx.Tx) error {
		return g.EraseData(context.Background(), tx, gdpr.Subject{UserID: id, Emails: []string{"anon@example.test"}})
	})
	a.delete(id)
	var typ string
	var uid, ip, ua, meta any
	require.NoError(t, db.Owner.QueryRow(context.Background(), `SELECT event_type, user_id, ip_address, user_agent, metadata
		FROM auth.security_events`).Scan(&typ, &uid, &ip, &ua, &meta))
	assert.Equal(t, "LOGIN_SUCCESS", typ)
	assert.Nil(t, uid)
	assert.Nil(t, ip)
	assert.Nil(t, ua)
	assert.Nil(t, meta)
	assert.Zero(t, count(t, db.Owner, `SELECT count(*) FROM auth.login_attempts`))
	assert.Zero(t, count(t, db.Owner, `SELECT count(*) FROM auth.lockouts`))
}
