package bootstrap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/bootstrap"
	"github.com/mana-how/mana-auth/internal/testutil"
)

const (
	userHeader = "X-Test-User"
	mountPath  = "/api/v1/me/bootstrap-singletons"
)

// userFromHeader stands in for a function built on
// token.ClaimsFromContext.
func userFromHeader(r *http.Request) (uuid.UUID, error) {
	v := r.Header.Get(userHeader)
	if v == "" {
		return uuid.Nil, autherr.New(autherr.Unauthorized, "")
	}
	return uuid.Parse(v)
}

type harness struct {
	t      testing.TB
	db     *testutil.Database
	b      *bootstrap.Bootstrapper
	spaces *fakeSpaces
	h      *bootstrap.Handler
	host   *http.ServeMux // h mounted as the reference server mounts it
	logs   *bytes.Buffer
}

func newHarness(t testing.TB, db *testutil.Database, pool *pgxpool.Pool) *harness {
	t.Helper()
	logs := &bytes.Buffer{}
	spaces := &fakeSpaces{}
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, nil))
	b, err := bootstrap.New(bootstrap.Config{Pool: pool, Now: newClock(t0).Now, Logger: logger})
	require.NoError(t, err)
	// HandlerOptions.Logger left nil: the Bootstrapper's logger serves.
	h, err := bootstrap.NewHandler(b, bootstrap.HandlerOptions{UserFromRequest: userFromHeader, Spaces: spaces})
	require.NoError(t, err)
	host := http.NewServeMux()
	host.Handle("POST "+mountPath, http.StripPrefix(mountPath, h))
	return &harness{t: t, db: db, b: b, spaces: spaces, h: h, host: host, logs: logs}
}

// lockedWriter serialises writes of concurrent requests to one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a answer) code() string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// post sends POST <mountPath> through the host mux.
func (h *harness) post(user uuid.UUID, body string) answer {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodPost, mountPath, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != uuid.Nil {
		req.Header.Set(userHeader, user.String())
	}
	rec := httptest.NewRecorder()
	h.host.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	require.NoError(h.t, json.Unmarshal(rec.Body.Bytes(), &a.body), "body %q", a.raw)
	return a
}

// bootstrapped is the expected 200 body.
func bootstrapped(userContext bool, spaces map[uuid.UUID]bool) string {
	sp := map[string]bool{}
	for id, v := range spaces {
		sp[id.String()] = v
	}
	b, err := json.Marshal(map[string]any{"ok": true, "bootstrapped": map[string]any{"userContext": userContext, "spaces": sp}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestNewHandlerOptions(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	b := newBootstrapper(t, db.Runtime, nil)
	h, err := bootstrap.NewHandler(b, bootstrap.HandlerOptions{UserFromRequest: userFromHeader, Spaces: &fakeSpaces{}})
	require.NoError(t, err)
	assert.Equal(t, []string{"POST /"}, h.Routes())

	for name, opts := range map[string]bootstrap.HandlerOptions{
		"no UserFromRequest": {Spaces: &fakeSpaces{}},
		"no Spaces":          {UserFromRequest: userFromHeader},
	} {
		_, err := bootstrap.NewHandler(b, opts)
		require.Error(t, err, name)
	}
	_, err = bootstrap.NewHandler(nil, bootstrap.HandlerOptions{UserFromRequest: userFromHeader, Spaces: &fakeSpaces{}})
	require.Error(t, err)
}

// Reconcile over HTTP: the first call inserts what is missing, the second
// nothing.
func TestReconcileTwice(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db, db.Runtime)
	ctx := context.Background()
	user, other := newUser(t, db), newUser(t, db)
	personal, club, ownedByOther := uuid.New(), uuid.New(), uuid.New()
	h.spaces.set(user,
		bootstrap.Space{ID: personal, OwnerUserID: user},
		bootstrap.Space{ID: club, OwnerUserID: user},
		bootstrap.Space{ID: ownedByOther, OwnerUserID: other}, // a space the user is a member of
		bootstrap.Space{ID: club, OwnerUserID: user},          // listed twice: one row, one answer
	)
	// The club's document was made when the club was created.
	ok, err := h.b.BootstrapSpaceSingletons(ctx, club, user)
	require.NoError(t, err)
	require.True(t, ok)

	a := h.post(user, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.JSONEq(t, bootstrapped(true, map[uuid.UUID]bool{personal: true, club: false, ownedByOther: true}), a.raw)
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
	assert.Equal(t, "application/json", a.header.Get("Content-Type"))

	a = h.post(user, "{}")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.JSONEq(t, bootstrapped(false, map[uuid.UUID]bool{personal: false, club: false, ownedByOther: false}), a.raw)

	assert.Len(t, userRows(t, db, user), 1)
	for _, s := range []uuid.UUID{personal, club} {
		rows := spaceRows(t, db, s)
		require.Len(t, rows, 1)
		assert.Equal(t, &user, rows[0].UserID)
	}
	rows := spaceRows(t, db, ownedByOther)
	require.Len(t, rows, 1)
	assert.Equal(t, &other, rows[0].UserID, "user_id is the space's owner, not the caller")
	assert.Equal(t, 4, countRows(t, db))
	assert.Equal(t, 3, strings.Count(h.logs.String(), "reconcile inserted a missing singleton"),
		"each repair is logged once: %s", h.logs.String())
}

func TestReconcileWithoutSpaces(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db, db.Runtime)
	user := newUser(t, db)
	a := h.post(user, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, `{"ok":true,"bootstrapped":{"userContext":true,"spaces":{}}}`+"\n", a.raw, "spaces is {} never null")
}

func TestReconcileConcurrently(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db, db.Runtime)
	user, member := newUser(t, db), newUser(t, db)
	shared, personal := uuid.New(), uuid.New()
	// Two users share a space; each lists it in another order.
	h.spaces.set(user, bootstrap.Space{ID: shared, OwnerUserID: user}, bootstrap.Space{ID: personal, OwnerUserID: user})
	h.spaces.set(member, bootstrap.Space{ID: personal, OwnerUserID: user}, bootstrap.Space{ID: shared, OwnerUserID: user})

	const n = 10
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]bootstrap.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			caller := user
			if i%2 == 1 {
				caller = member
			}
			results[i], errs[i] = h.b.Reconcile(context.Background(), caller, h.spaces)
		})
	}
	close(start)
	wg.Wait()
	insertedShared, insertedPersonal := 0, 0
	for i := range n {
		require.NoError(t, errs[i], "call %d", i)
		if results[i].Spaces[shared] {
			insertedShared++
		}
		if results[i].Spaces[personal] {
			insertedPersonal++
		}
	}
	assert.Equal(t, 1, insertedShared)
	assert.Equal(t, 1, insertedPersonal)
	assert.Len(t, spaceRows(t, db, shared), 1)
	assert.Len(t, spaceRows(t, db, personal), 1)
	assert.Len(t, userRows(t, db, user), 1)
	assert.Len(t, userRows(t, db, member), 1)
}

func TestHandlerNoUser(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db, db.Runtime)
	a := h.post(uuid.Nil, "")
	assert.Equal(t, http.StatusUnauthorized, a.status, a.raw)
	assert.Equal(t, "UNAUTHORIZED", a.code())

	// A user function that answers no user without an error.
	b := newBootstrapper(t, db.Runtime, nil)
	hh, err := bootstrap.NewHandler(b, bootstrap.HandlerOptions{
		UserFromRequest: func(*http.Request) (uuid.UUID, error) { return uuid.Nil, nil },
		Spaces:          &fakeSpaces{},
		Logger:          slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	hh.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"UNAUTHORIZED"`)

	assert.Zero(t, countRows(t, db))
	assert.Zero(t, h.spaces.calls, "the lister is not asked for nobody")
}

func TestHandlerBadBody(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db, db.Runtime)
	user := newUser(t, db)
	a := h.post(user, "{not json")
	assert.Equal(t, http.StatusBadRequest, a.status, a.raw)
	assert.Equal(t, "BAD_REQUEST", a.code())
	assert.Zero(t, countRows(t, db), "nothing reconciled for a refused request")
}

func TestHandlerPaths(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db, db.Runtime)
	user := newUser(t, db)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "", http.StatusOK},  // the mount point after StripPrefix
		{http.MethodPost, "/", http.StatusOK}, // the same with a slash
		{http.MethodPost, "/other", http.StatusNotFound},
		{http.MethodGet, "/", http.StatusMethodNotAllowed},
	} {
		req := httptest.NewRequest(tc.method, "/", nil)
		req.URL.Path = tc.path
		req.Header.Set(userHeader, user.String())
		rec := httptest.NewRecorder()
		h.h.ServeHTTP(rec, req)
		assert.Equal(t, tc.want, rec.Code, "%s %q: %s", tc.method, tc.path, rec.Body.String())
	}
}

func TestHandlerDatabaseDown(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	proxy := testutil.NewProxy(t, testutil.ServerAddr(t))
	h := newHarness(t, db, testutil.OpenPool(t, proxy.URL(db.RuntimeURL)))
	user := newUser(t, db)
	space := uuid.New()
	h.spaces.set(user, bootstrap.Space{ID: space, OwnerUserID: user})

	proxy.Cut()
	a := h.post(user, "")
	assert.Equal(t, http.StatusServiceUnavailable, a.status, a.raw)
	assert.Equal(t, "SERVICE_UNAVAILABLE", a.code())
	assert.Contains(t, h.logs.String(), `"level":"ERROR"`, "logged with its cause")

	proxy.Restore()
	a = h.post(user, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.JSONEq(t, bootstrapped(true, map[uuid.UUID]bool{space: true}), a.raw, "nothing was inserted during the outage")
}

func TestHandlerListerErrors(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	user, other := newUser(t, db), newUser(t, db)
	for _, tc := range []struct {
		name   string
		setup  func(f *fakeSpaces)
		status int
		code   string
	}{
		{"lister's database down", func(f *fakeSpaces) {
			f.fail(autherr.Wrap(autherr.ServiceUnavailable, errors.New("dial tcp: connection refused"), ""))
		}, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"},
		{"lister bug", func(f *fakeSpaces) { f.fail(errors.New("boom")) }, http.StatusInternalServerError, "INTERNAL"},
		{"space without owner", func(f *fakeSpaces) {
			f.set(user, bootstrap.Space{ID: uuid.New()})
		}, http.StatusInternalServerError, "INTERNAL"},
		{"space without id", func(f *fakeSpaces) {
			f.set(user, bootstrap.Space{OwnerUserID: user})
		}, http.StatusInternalServerError, "INTERNAL"},
		{"one space, two owners", func(f *fakeSpaces) {
			id := uuid.New()
			f.set(user, bootstrap.Space{ID: id, OwnerUserID: user}, bootstrap.Space{ID: id, OwnerUserID: other})
		}, http.StatusInternalServerError, "INTERNAL"},
		{"owner unknown", func(f *fakeSpaces) {
			f.set(user, bootstrap.Space{ID: uuid.New(), OwnerUserID: uuid.New()})
		}, http.StatusConflict, "CONFLICT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, db, db.Runtime)
			tc.setup(h.spaces)
			a := h.post(user, "")
			assert.Equal(t, tc.status, a.status, a.raw)
			assert.Equal(t, tc.code, a.code(), a.raw)
			assert.Zero(t, countRows(t, db), "nothing inserted, the user context neither")
		})
	}
}

// Reconcile takes the rows of its spaces in one order (by id), whatever
// order the lister reports, so it never waits in a cycle with another
// transaction that does the same. Here a transaction holds the row of
// space lo and then inserts hi, while a reconcile listing [hi, lo] runs:
// taking hi first would deadlock (PostgreSQL ends one with 40P01).
func TestReconcileLocksInOneOrder(t *testing.T) {
	t.Parallel()
	db := testutil.DB(t)
	h := newHarness(t, db, db.Runtime)
	ctx := context.Background()
	user := newUser(t, db)
	lo, hi := uuid.New(), uuid.New()
	if bytes.Compare(lo[:], hi[:]) > 0 {
		lo, hi = hi, lo
	}
	h.spaces.set(user, bootstrap.Space{ID: hi, OwnerUserID: user}, bootstrap.Space{ID: lo, OwnerUserID: user})

	tx, err := db.Runtime.Begin(ctx)
	require.NoError(t, err)
	ok, err := h.b.BootstrapSpaceSingletonsTx(ctx, tx, lo, user)
	require.NoError(t, err)
	require.True(t, ok)

	type answer struct {
		res bootstrap.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := h.b.Reconcile(ctx, user, h.spaces)
		done <- answer{res, err}
	}()
	waitForLockWait(t, db)

	ok, err = h.b.BootstrapSpaceSingletonsTx(ctx, tx, hi, user)
	require.NoError(t, err, "the reconcile must not hold hi while it waits for lo")
	require.True(t, ok)
	require.NoError(t, tx.Commit(ctx))

	a := <-done
	require.NoError(t, a.err)
	assert.Equal(t, bootstrap.Result{UserContext: true, Spaces: map[uuid.UUID]bool{lo: false, hi: false}}, a.res)
}
