package token_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/token"
)

// sessionTable is a SessionChecker over a map, counting its reads.
type sessionTable struct {
	mu    sync.Mutex
	live  map[uuid.UUID]bool
	down  bool
	reads int
}

func (s *sessionTable) SessionActive(_ context.Context, id uuid.UUID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.down {
		return false, autherr.Wrap(autherr.ServiceUnavailable, errors.New("connection refused"), "")
	}
	return s.live[id], nil
}

func (s *sessionTable) set(id uuid.UUID, live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live[id] = live
}

// TestLiveSessionsCacheIsBounded: a warm answer is reused (no read per
// request) but never longer than the TTL, Forget drops it at once, and an
// outage is SERVICE_UNAVAILABLE — not "revoked". If the cache had no time
// bound the revoked session would pass forever; if errors were read as
// "not live" an outage would sign everybody out.
func TestLiveSessionsCacheIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	table := &sessionTable{live: map[uuid.UUID]bool{}}
	l, err := token.NewLiveSessions(token.LiveSessionsConfig{Checker: table, Now: func() time.Time { return now }})
	require.NoError(t, err)
	ctx := context.Background()
	sid := uuid.New()
	table.set(sid, true)

	require.NoError(t, l.Check(ctx, sid))
	for range 100 {
		require.NoError(t, l.Check(ctx, sid))
	}
	assert.Equal(t, 1, table.reads, "a warm path reads nothing")

	table.set(sid, false)
	now = now.Add(token.MaxLiveTTL - time.Millisecond)
	assert.NoError(t, l.Check(ctx, sid), "within the TTL the cached answer stands")
	now = now.Add(time.Millisecond)
	assert.Equal(t, autherr.TokenInvalid, autherr.CodeOf(l.Check(ctx, sid)), "at the TTL it is asked again")

	other := uuid.New()
	table.set(other, true)
	require.NoError(t, l.Check(ctx, other))
	table.set(other, false)
	l.Forget(other)
	assert.Equal(t, autherr.TokenInvalid, autherr.CodeOf(l.Check(ctx, other)), "Forget makes a revocation immediate")

	table.down = true
	third := uuid.New()
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(l.Check(ctx, third)))
}

func TestLiveSessionsMiddleware(t *testing.T) {
	tokens := newIssuer(t)
	table := &sessionTable{live: map[uuid.UUID]bool{}}
	l, err := token.NewLiveSessions(token.LiveSessionsConfig{Checker: table})
	require.NoError(t, err)
	h := token.Middleware(tokens)(l.Middleware(autherr.Writer{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	liveSID, deadSID := uuid.New(), uuid.New()
	table.set(liveSID, true)
	call := func(sid uuid.UUID) *httptest.ResponseRecorder {
		tok, _, err := tokens.Issue(uuid.New(), "a@example.com", sid)
		require.NoError(t, err)
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	assert.Equal(t, http.StatusNoContent, call(liveSID).Code)
	w := call(deadSID)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, w.Body.String(), `"TOKEN_INVALID"`)
	assert.Equal(t, `Bearer error="invalid_token"`, w.Header().Get("WWW-Authenticate"))

	_, err = token.NewLiveSessions(token.LiveSessionsConfig{Checker: table, TTL: time.Minute})
	assert.Error(t, err, "a TTL over 5 s breaks api.md's bound")
	_, err = token.NewLiveSessions(token.LiveSessionsConfig{})
	assert.Error(t, err)
}
