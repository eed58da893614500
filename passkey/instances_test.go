package passkey_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/authtest"
)

// TestOptionsFromOneInstanceVerifyOnAnother: the challenge lives in
// PostgreSQL, so a ceremony begun on instance A completes on instance B —
// registration and sign-in both — and B's token is a token of the same
// account. Negative control: keeping challenges in process memory fails
// both verifications on B.
func TestOptionsFromOneInstanceVerifyOnAnother(t *testing.T) {
	t.Parallel()
	a := newPkFixture(t, pkOptions{})
	b := a.peer(t, pkOptions{})
	u := a.user(t, "two@example.com")
	k := newSoftKey(u.id)

	c := a.registerOptions(t, u.access)
	// B verifies tokens with its own key: the user signs in there too.
	accessB, _ := b.Login(t, u.email, authtest.StrongPassword)
	st, body, _ := b.Call(t, "POST", pkPrefix+"/register/verify",
		map[string]any{"challengeId": c.ChallengeID, "credential": k.create(t, c.Options)}, authtest.Bearer(accessB))
	require.Equal(t, http.StatusCreated, st, "registration begun on A, finished on B: %v", body)

	for _, email := range []string{u.email, ""} {
		c := a.signInOptions(t, email)
		st, body, _ := b.verify(t, c.ChallengeID, k.get(t, c.Options))
		require.Equal(t, http.StatusOK, st, "sign-in begun on A, finished on B: %v", body)
		assert.Equal(t, u.id.String(), authtest.UserOf(t, body)["id"])
		claims, err := b.Tokens.Verify(body["accessToken"].(string))
		require.NoError(t, err, "B issued the token")
		assert.Equal(t, u.id.String(), claims.Subject)
	}
	// The challenge B spent is spent for A too.
	c = a.signInOptions(t, u.email)
	assertion := k.get(t, c.Options)
	st, body, _ = b.verify(t, c.ChallengeID, assertion)
	require.Equal(t, http.StatusOK, st, "%v", body)
	st, body, _ = a.verify(t, c.ChallengeID, assertion)
	authtest.RequireError(t, st, body, http.StatusUnauthorized, "PASSKEY_VERIFICATION_FAILED")
}

// TestParallelVerifiesOfOneAssertionStartOneSession: 20 requests carry the
// same assertion at once; the challenge is spent by one conditional
// UPDATE, so exactly one starts a session. The others are refused (401,
// or 429 once the gate's in-flight admissions or the credential's
// failures run out). Negative control: spending the challenge with a
// SELECT and a later UPDATE (or not at all) lets several through.
func TestParallelVerifiesOfOneAssertionStartOneSession(t *testing.T) {
	t.Parallel()
	p := newPkFixture(t, pkOptions{})
	u := p.user(t, "race@example.com")
	k := newSoftKey(u.id)
	p.register(t, u.access, k)
	sessions := p.sessions(t, u.id)
	c := p.signInOptions(t, u.email)
	body := map[string]any{"challengeId": c.ChallengeID, "credential": k.get(t, c.Options)}

	const n = 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	statuses := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i], _, errs[i] = p.Try(context.Background(), "POST", pkPrefix+"/authenticate/verify", body, nil)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, st := range statuses {
		require.NoError(t, errs[i])
		switch st {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized, http.StatusTooManyRequests:
		default:
			t.Errorf("request %d answered %d", i, st)
		}
	}
	t.Logf("answers: %v", statuses)
	assert.Equal(t, 1, ok, "exactly one of %d verifications signs in: %v", n, statuses)
	assert.Equal(t, sessions+1, p.sessions(t, u.id), "exactly one session")
	assert.Equal(t, 1, p.OwnerInt(t, `SELECT count(*) FROM auth.security_events WHERE user_id = $1
		AND event_type = 'LOGIN_SUCCESS' AND metadata->>'method' = 'passkey'`, u.id))
	assert.Zero(t, p.events(t, u.id, "PASSKEY_CLONE_SUSPECTED"), "a replay is not a clone: its challenge fails first")
}

// TestCeremoniesInEveryExecMode: a registration and a sign-in through a
// pool in each of pgx's query exec modes (the reference server lets
// DATABASE_URL choose one; behind PgBouncer in transaction mode only the
// modes without named prepared statements work). The challenge's session
// is JSON: bound as []byte it is bytea to exec and simple_protocol, and
// every options call fails.
func TestCeremoniesInEveryExecMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			p := newPkFixture(t, pkOptions{execMode: mode})
			u := p.user(t, "modes@example.com")
			k := newSoftKey(u.id)
			p.register(t, u.access, k)
			c := p.signInOptions(t, u.email)
			st, body, _ := p.verify(t, c.ChallengeID, k.get(t, c.Options))
			require.Equal(t, http.StatusOK, st, "sign-in in exec mode %s: %v", mode, body)
		})
	}
}
