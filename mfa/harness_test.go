package mfa_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/mfa"
	"github.com/mana-how/mana-auth/vault"
)

// Prefix is where the fixture mounts the mfa handler, as the reference
// server does.
const Prefix = authtest.AuthPrefix + "/mfa"

const password = authtest.StrongPassword

var bg = context.Background()

// fixture is the account stack of authtest with the second factor wired
// in: Challenges as manaauth's SecondFactor, the Service and its handler
// under Prefix, on the fixture's clock and a KEK ring of its own.
type fixture struct {
	*authtest.Fixture
	svc        *mfa.Service
	challenges *mfa.Challenges
	keys       *vault.KeyRing
}

type fixtureOptions struct {
	db   *testutil.Database // default: a fresh one
	pool *pgxpool.Pool      // default: the database's runtime pool
	keys *vault.KeyRing     // default: one random KEK "k1"
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	if o.db == nil {
		o.db = testutil.DB(t)
	}
	if o.pool == nil {
		o.pool = o.db.Runtime
	}
	if o.keys == nil {
		o.keys = newRing(t, "k1")
	}
	clock := authtest.NewClock()
	ch, err := mfa.NewChallenges(mfa.ChallengesConfig{Pool: o.pool, Now: clock.Now})
	require.NoError(t, err)
	f := &fixture{challenges: ch, keys: o.keys}
	f.Fixture = authtest.New(t, authtest.Options{DB: o.db, Pool: o.pool, Clock: clock, SecondFactor: ch,
		Mount: func(af *authtest.Fixture, mux *http.ServeMux) {
			f.svc, err = mfa.New(mfa.Config{Pool: af.Pool, Accounts: af.Auth, Keys: o.keys, Mailer: af.Mailer,
				Now: af.Clock.Now, Logger: af.Logger, Registerer: af.Registry})
			require.NoError(t, err)
			t.Cleanup(f.svc.Close)
			h, err := mfa.NewHandler(f.svc, mfa.HandlerOptions{Tokens: af.Tokens})
			require.NoError(t, err)
			mux.Handle(Prefix+"/", http.StripPrefix(Prefix, h))
		}})
	return f
}

// newKEK is a random KEK.
func newKEK(t testing.TB, id string) vault.KEK {
	t.Helper()
	k := make([]byte, vault.KEKSize)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return vault.KEK{ID: id, Key: k}
}

// ringOf is a key ring of the KEKs, the first active.
func ringOf(t testing.TB, keks ...vault.KEK) *vault.KeyRing {
	t.Helper()
	ring, err := vault.NewKeyRing(keks...)
	require.NoError(t, err)
	return ring
}

// newRing is a key ring of one random KEK.
func newRing(t testing.TB, id string) *vault.KeyRing { return ringOf(t, newKEK(t, id)) }

// rfc6238 is a TOTP code (RFC 6238 over RFC 4226's HOTP, HMAC-SHA-1, 30
// second steps, 6 digits), written here from the RFCs so that the tests
// do not check pquerna/otp against itself; TestIndependentTOTP checks it
// against the RFC's own vectors.
func rfc6238(secret []byte, at time.Time) string {
	return hotpCode(secret, uint64(at.Unix()/30))
}

func hotpCode(secret []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := uint32(sum[off]&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	return fmt.Sprintf("%06d", bin%1_000_000)
}

// user is an account of the fixture with a signed-in session.
type user struct {
	id, email       string
	access, refresh string
	secret          []byte   // the TOTP secret, once enrolled
	recovery        []string // the recovery codes, once confirmed
}

func (u *user) bearer() map[string]string { return authtest.Bearer(u.access) }

// signUp registers and signs in (verification is not required).
func (f *fixture) signUp(t testing.TB, email string) *user {
	t.Helper()
	st, body, _ := f.Call(t, "POST", authtest.AuthPrefix+"/register", map[string]any{"email": email, "password": password}, nil)
	require.Equal(t, http.StatusCreated, st, "register: %v", body)
	u := &user{email: email}
	u.id, _ = authtest.UserOf(t, body)["id"].(string)
	u.access, u.refresh = f.Login(t, email, password)
	return u
}

// enroll enrolls a TOTP factor and returns the secret, decoded with the
// standard library's base32 (not pquerna's).
func (f *fixture) enroll(t testing.TB, u *user) map[string]any {
	t.Helper()
	st, body, resp := f.Call(t, "POST", Prefix+"/totp/enroll", map[string]any{"password": password}, u.bearer())
	require.Equal(t, http.StatusOK, st, "enroll: %v", body)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "the answer holds the secret")
	s, _ := body["secret"].(string)
	var err error
	u.secret, err = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	require.NoError(t, err, "secret %q", s)
	return body
}

// confirm confirms with the current code and keeps the recovery codes.
func (f *fixture) confirm(t testing.TB, u *user) {
	t.Helper()
	st, body, resp := f.Call(t, "POST", Prefix+"/totp/confirm", map[string]any{"code": rfc6238(u.secret, f.Clock.Now())}, u.bearer())
	require.Equal(t, http.StatusOK, st, "confirm: %v", body)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "the answer holds the recovery codes")
	codes, _ := body["recoveryCodes"].([]any)
	u.recovery = nil
	for _, c := range codes {
		u.recovery = append(u.recovery, c.(string))
	}
	require.Len(t, u.recovery, mfa.RecoveryCodes)
}

// enabled is a user with an active factor; the clock then moves to the
// next step, so that the next code is not the one confirm used.
func (f *fixture) enabled(t testing.TB, email string) *user {
	t.Helper()
	u := f.signUp(t, email)
	f.enroll(t, u)
	f.confirm(t, u)
	f.Clock.Advance(30 * time.Second)
	return u
}

// challenge signs in with the password and returns the mfaToken of the
// mfaRequired answer.
func (f *fixture) challenge(t testing.TB, u *user) string {
	t.Helper()
	st, body, resp := f.Call(t, "POST", authtest.AuthPrefix+"/login", map[string]any{"email": u.email, "password": password}, nil)
	require.Equal(t, http.StatusOK, st, "login: %v", body)
	require.Equal(t, true, body["mfaRequired"], "login answered %v", body)
	require.Empty(t, resp.Cookies(), "no cookie before the second step")
	tok, _ := body["mfaToken"].(string)
	require.NotEmpty(t, tok)
	return tok
}

// verify posts to /verify.
func (f *fixture) verify(t testing.TB, mfaToken string, proof map[string]any) (int, map[string]any, *http.Response) {
	t.Helper()
	body := map[string]any{"mfaToken": mfaToken}
	for k, v := range proof {
		body[k] = v
	}
	return f.Call(t, "POST", Prefix+"/verify", body, nil)
}

func code(c string) map[string]any     { return map[string]any{"code": c} }
func recovery(c string) map[string]any { return map[string]any{"recoveryCode": c} }

// status reads GET /status.
func (f *fixture) status(t testing.TB, u *user) (bool, int) {
	t.Helper()
	st, body, _ := f.Call(t, "GET", Prefix+"/status", nil, u.bearer())
	require.Equal(t, http.StatusOK, st, "status: %v", body)
	on, _ := body["totp"].(bool)
	left, _ := body["recoveryCodesLeft"].(float64)
	return on, int(left)
}

// lockout reads the gate's counter of an address as the owner.
func (f *fixture) lockout(t testing.TB, email string) (failures int, locked bool) {
	t.Helper()
	err := f.DB.Owner.QueryRow(bg, `SELECT cardinality(failures), coalesce(locked_until > $2, false)
		FROM auth.lockouts WHERE email = $1`, email, f.Clock.Now()).Scan(&failures, &locked)
	if err == pgx.ErrNoRows {
		return 0, false
	}
	require.NoError(t, err)
	return failures, locked
}

// events lists the user's security event types, oldest first.
func (f *fixture) events(t testing.TB, u *user) []string {
	t.Helper()
	rows, err := f.DB.Owner.Query(bg, `SELECT event_type FROM auth.security_events WHERE user_id = $1 ORDER BY id`, u.id)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// waitMail waits for a mail to `to` whose subject is subject and returns
// how many there are.
func (f *fixture) waitMail(t testing.TB, to, subject string) string {
	t.Helper()
	deadline := time.Now().Add(authtest.MailWait)
	for {
		for _, m := range f.SMTP.Messages() {
			if m.Subject == subject && strings.EqualFold(strings.Join(m.To, ","), to) {
				return m.Text
			}
		}
		require.True(t, time.Now().Before(deadline), "no mail %q to %s", subject, to)
		time.Sleep(20 * time.Millisecond)
	}
}
