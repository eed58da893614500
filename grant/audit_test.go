package grant_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/grant"
)

// auditLog is an Auditor in memory; err fails every write.
type auditLog struct {
	mu       sync.Mutex
	attempts []grant.Attempt
	err      error
}

func (l *auditLog) RecordUnwrap(_ context.Context, a grant.Attempt) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	l.attempts = append(l.attempts, a)
	return nil
}

func TestEveryAttemptIsAudited(t *testing.T) {
	t.Parallel()
	log := &auditLog{}
	f := newFixture(t, fixtureOpts{auditor: log})
	g := f.issue(t, "mission-42", 0)

	_, err := f.unwrapper.Unwrap(context.Background(), g)
	require.NoError(t, err)
	bad := *g
	bad.MissionID = "mission-43"
	_, err = f.unwrapper.Unwrap(context.Background(), &bad)
	requireReason(t, err, grant.ReasonWrapRejected)
	_, err = f.unwrapper.UnwrapJSON(context.Background(), []byte("{"))
	requireReason(t, err, grant.ReasonMalformed)
	f.clock.Set(g.ExpiresAt)
	_, err = f.unwrapper.Unwrap(context.Background(), g)
	requireReason(t, err, grant.ReasonExpired)

	require.Len(t, log.attempts, 4)
	want := []struct {
		outcome grant.Outcome
		reason  grant.Reason
		mission string
	}{
		{grant.OutcomeUnwrapped, "", "mission-42"},
		{grant.OutcomeRefused, grant.ReasonWrapRejected, "mission-43"},
		{grant.OutcomeRefused, grant.ReasonMalformed, ""},
		{grant.OutcomeRefused, grant.ReasonExpired, "mission-42"},
	}
	for i, w := range want {
		a := log.attempts[i]
		assert.Equal(t, w.outcome, a.Outcome, "attempt %d", i)
		assert.Equal(t, w.reason, a.Reason, "attempt %d", i)
		assert.Equal(t, w.mission, a.MissionID, "attempt %d", i)
	}
	assert.Equal(t, f.user, log.attempts[0].UserID)
	assert.Equal(t, g.ExpiresAt, log.attempts[0].ExpiresAt)
	assert.Equal(t, g.SignatureKID, log.attempts[0].SignatureKID)
	assert.Equal(t, testNow, log.attempts[0].At)
	assert.Zero(t, log.attempts[2].UserID, "nothing is known of an unparsable grant")
}

// TestAuditFailure: a key is never released unaudited; a refusal stays a
// refusal when its audit row fails.
func TestAuditFailure(t *testing.T) {
	t.Parallel()
	log := &auditLog{err: errors.New("audit store down")}
	f := newFixture(t, fixtureOpts{auditor: log})
	g := f.issue(t, "mission-42", 0)
	key, err := f.unwrapper.Unwrap(context.Background(), g)
	assert.Nil(t, key)
	require.Error(t, err)
	assert.Equal(t, grant.Reason(""), grant.ReasonOf(err), "not the grant's fault")
	assert.Equal(t, autherr.ServiceUnavailable, autherr.Classify(err).Code)

	g.MissionID = "edited"
	_, err = f.unwrapper.Unwrap(context.Background(), g)
	requireReason(t, err, grant.ReasonWrapRejected)
}
