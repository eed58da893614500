package gdpr_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/gdpr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
)

var bg = context.Background()

// users is a UserReader over auth.users.
type users struct{}

func (users) ExportUser(ctx context.Context, tx pgx.Tx, id uuid.UUID) (any, error) {
	var u struct {
		ID    uuid.UUID `json:"id"`
		Email string    `json:"email"`
	}
	err := tx.QueryRow(ctx, `SELECT id, email FROM auth.users WHERE id = $1`, id).Scan(&u.ID, &u.Email)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, autherr.New(autherr.NotFound, "user not found")
	}
	return u, err
}

// probe is an exporter of the tests: it runs before, then writes its
// section from a query, or fails.
type probe struct {
	before  func(ctx context.Context) error // runs first, outside the export's transaction
	section string
	query   string
	fail    error
	erased  []gdpr.Subject
	mu      sync.Mutex
}

func (p *probe) ExportData(ctx context.Context, tx pgx.Tx, s gdpr.Subject, w *gdpr.Writer) error {
	if p.before != nil {
		if err := p.before(ctx); err != nil {
			return err
		}
	}
	if p.fail != nil {
		return p.fail
	}
	return w.Query(ctx, tx, p.section, p.query, s.UserID)
}

func (p *probe) EraseData(_ context.Context, _ pgx.Tx, s gdpr.Subject) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.erased = append(p.erased, s)
	return p.fail
}

type fixture struct {
	db       *testutil.Database
	pool     *pgxpool.Pool // the services' pool; default db.Runtime
	gate     *lockout.Service
	events   *lockout.Events
	user     uuid.UUID
	exported atomic.Int32
	now      time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{db: testutil.DB(t), now: time.Date(2026, 5, 17, 23, 59, 58, 0, time.UTC)}
	f.pool = f.db.Runtime
	var err error
	f.events, err = lockout.NewEvents(lockout.EventsConfig{Pool: f.db.Runtime})
	require.NoError(t, err)
	f.gate, err = lockout.New(lockout.Config{Pool: f.db.Runtime, Events: f.events})
	require.NoError(t, err)
	require.NoError(t, f.db.Runtime.QueryRow(bg, `INSERT INTO auth.users (email) VALUES ('data@example.test') RETURNING id`).Scan(&f.user))
	return f
}

func (f *fixture) service(t testing.TB, exporters ...gdpr.Exporter) *gdpr.Service {
	t.Helper()
	svc, err := gdpr.New(gdpr.Config{Pool: f.pool, Users: users{}, Addresses: f.gate,
		Exporters: append([]gdpr.Exporter{f.gate}, exporters...), Now: func() time.Time { return f.now },
		Exported: func(ctx context.Context, userID uuid.UUID, c gdpr.Client) error {
			f.exported.Add(1)
			return f.events.Append(ctx, lockout.Event{Type: lockout.DataExported, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
		}})
	require.NoError(t, err)
	return svc
}

// export runs Export into a string.
func export(t testing.TB, svc *gdpr.Service, id uuid.UUID) (string, gdpr.Stats, error) {
	t.Helper()
	var b strings.Builder
	st, err := svc.Export(bg, id, gdpr.Client{}, func(time.Time) io.Writer { return &b })
	return b.String(), st, err
}

type document struct {
	ExportedAt string                      `json:"exportedAt"`
	User       map[string]any              `json:"user"`
	Sections   map[string][]map[string]any `json:"sections"`
}

// TestExportIsOneSnapshot: an event committed by another connection while
// the export runs — after its first statement, before the events section
// is read — is not in the export. Under READ COMMITTED (a transaction per
// section, or none) it would be.
func TestExportIsOneSnapshot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.events.Log(bg, lockout.Event{Type: lockout.Register, UserID: f.user})
	late := &probe{section: "public.late", query: `SELECT 1 AS one WHERE $1::uuid IS NOT NULL`,
		before: func(ctx context.Context) error {
			return f.events.Append(ctx, lockout.Event{Type: lockout.ProfileUpdated, UserID: f.user})
		}}
	svc, err := gdpr.New(gdpr.Config{Pool: f.db.Runtime, Users: users{}, Addresses: f.gate,
		Exporters: []gdpr.Exporter{late, f.gate}, // the late insert runs before the events are read
		Exported:  func(context.Context, uuid.UUID, gdpr.Client) error { return nil }})
	require.NoError(t, err)
	out, stats, err := export(t, svc, f.user)
	require.NoError(t, err)
	var doc document
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Len(t, doc.Sections["auth.security_events"], 1, "%s", out)
	assert.Equal(t, "REGISTER", doc.Sections["auth.security_events"][0]["event_type"])
	assert.Equal(t, 2, countRows(t, f.db, `SELECT count(*) FROM auth.security_events`), "the late event was committed")
	assert.Equal(t, []string{"public.late", "auth.user_emails", "auth.login_attempts", "auth.lockouts", "auth.security_events"}, stats.Sections)
}

// TestExportDocument: the shape, every declared section present (empty
// ones as []), the time zone UTC, and DATA_EXPORTED written before the
// export (so the next export holds it).
func TestExportDocument(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Connections whose session time zone is not UTC: the export sets its
	// own.
	f.pool = f.db.Pool(t, true, func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["timezone"] = "Asia/Tokyo" })
	var local string
	require.NoError(t, f.pool.QueryRow(bg, `SELECT now()::text`).Scan(&local))
	require.True(t, strings.HasSuffix(local, "+09"), "positive control: the session is in Tokyo: %s", local)
	svc := f.service(t)
	out, stats, err := export(t, svc, f.user)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(out, "}}\n"))
	var doc document
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	assert.Equal(t, "2026-05-17T23:59:58Z", doc.ExportedAt)
	assert.Equal(t, map[string]any{"id": f.user.String(), "email": "data@example.test"}, doc.User)
	for _, s := range []string{"auth.user_emails", "auth.login_attempts", "auth.lockouts", "auth.security_events"} {
		require.Contains(t, doc.Sections, s)
	}
	assert.Empty(t, doc.Sections["auth.security_events"], "an export's own event is written after its snapshot was taken")
	assert.Equal(t, int32(1), f.exported.Load())
	assert.EqualValues(t, 1, stats.Rows, "the address history's one row")
	held := doc.Sections["auth.user_emails"][0]["held_from"].(string)
	assert.True(t, strings.HasSuffix(held, "+00:00"), "times in UTC: %s", held)

	out, _, err = export(t, svc, f.user)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	require.Len(t, doc.Sections["auth.security_events"], 1)
	assert.Equal(t, "DATA_EXPORTED", doc.Sections["auth.security_events"][0]["event_type"])

	_, _, err = export(t, svc, uuid.New())
	assert.Equal(t, autherr.NotFound, autherr.CodeOf(err), "%v", err)
	assert.Equal(t, int32(2), f.exported.Load(), "no event for an account that does not exist")
}

func countRows(t testing.TB, db *testutil.Database, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Owner.QueryRow(bg, sql).Scan(&n))
	return n
}

// TestWriterRefusesBadAndRepeatedSections: two exporters claiming one
// table is a wiring bug the export reports, not a document with a
// repeated key.
func TestWriterRefusesBadAndRepeatedSections(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, name := range []string{"users", "auth.", ".users", "Auth.users", "auth.users;drop", `auth."users"`, "auth.users.x"} {
		p := &probe{section: name, query: `SELECT $1::uuid AS id`}
		_, _, err := export(t, f.service(t, p), f.user)
		assert.ErrorIs(t, err, gdpr.ErrSection, name)
	}
	p := &probe{section: "auth.lockouts", query: `SELECT $1::uuid AS id`}
	_, _, err := export(t, f.service(t, p), f.user)
	assert.ErrorIs(t, err, gdpr.ErrSection, "auth.lockouts is lockout's")
}

// handlerFixture serves the handler behind a fake authentication.
func handlerFixture(t testing.TB, f *fixture, svc *gdpr.Service, limit int, del func(context.Context, uuid.UUID, string, gdpr.Client) error) *httptest.Server {
	t.Helper()
	lim, err := lockout.NewMemoryLimiter(lockout.MemoryConfig{Rate: lockout.Rate{Limit: limit, Period: time.Hour}})
	require.NoError(t, err)
	if del == nil {
		del = func(context.Context, uuid.UUID, string, gdpr.Client) error { return nil }
	}
	h, err := gdpr.NewHandler(svc, gdpr.HandlerOptions{Limiter: lim, Delete: del,
		UserFromRequest: func(r *http.Request) (uuid.UUID, error) {
			id, err := uuid.Parse(r.Header.Get("X-Test-User"))
			if err != nil {
				return uuid.Nil, autherr.New(autherr.Unauthorized, "authentication required")
			}
			return id, nil
		}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/me/data", http.StripPrefix("/api/v1/me/data", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func call(t testing.TB, srv *httptest.Server, method string, user uuid.UUID, body string) (*http.Response, []byte, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+"/api/v1/me/data", rd)
	require.NoError(t, err)
	req.Header.Set("X-Test-User", user.String())
	resp, err := srv.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestHandlerAnswersAnAttachmentAndLimitsExports(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv := handlerFixture(t, f, f.service(t), 2, nil)
	for range 2 {
		resp, body, err := call(t, srv, "GET", f.user, "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		assert.Equal(t, `attachment; filename="mana-auth-export-2026-05-17.json"`, resp.Header.Get("Content-Disposition"))
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		assert.True(t, json.Valid(body))
	}
	resp, body, err := call(t, srv, "GET", f.user, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), "RATE_LIMITED")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Equal(t, int32(2), f.exported.Load(), "a refused export records nothing")
	// Another user has a limit of their own; the empty path answers too.
	other := uuid.New()
	resp, _, err = call(t, srv, "GET", other, "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "no such account, but not limited")
	resp, _, err = call(t, srv, "GET", uuid.Nil, "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// TestAnExportThatCannotBeRecordedIsRefused: no DATA_EXPORTED, no export.
func TestAnExportThatCannotBeRecordedIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	svc, err := gdpr.New(gdpr.Config{Pool: f.db.Runtime, Users: users{}, Addresses: f.gate, Exporters: []gdpr.Exporter{f.gate},
		Exported: func(context.Context, uuid.UUID, gdpr.Client) error {
			return autherr.Wrap(autherr.ServiceUnavailable, errors.New("events down"), "")
		}})
	require.NoError(t, err)
	srv := handlerFixture(t, f, svc, 5, nil)
	resp, body, err := call(t, srv, "GET", f.user, "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Content-Disposition"))
	assert.Contains(t, string(body), "SERVICE_UNAVAILABLE")
}

// TestAnExportCutShortAbortsTheConnection: an exporter failing after the
// first byte must not leave the client with a 200 whose body looks
// complete. Returning normally instead of aborting ends the chunked body
// cleanly, and this test sees no read error.
func TestAnExportCutShortAbortsTheConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	broken := &probe{fail: errors.New("disk on fire")}
	srv := handlerFixture(t, f, f.service(t, broken), 5, nil)
	resp, _, err := call(t, srv, "GET", f.user, "")
	if err == nil {
		t.Fatalf("the export was cut short, yet the client read a whole %d answer", resp.StatusCode)
	}
}

func TestDeleteCallsTheAccountDeletion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var got []string
	srv := handlerFixture(t, f, f.service(t), 5, func(_ context.Context, id uuid.UUID, password string, _ gdpr.Client) error {
		got = append(got, id.String()+" "+password)
		if password == "wrong" {
			return autherr.New(autherr.InvalidCredentials, "invalid email or password")
		}
		return nil
	})
	resp, body, err := call(t, srv, "DELETE", f.user, `{"password":"right"}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", body)
	resp, _, err = call(t, srv, "DELETE", f.user, `{"password":"wrong"}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, body, err = call(t, srv, "DELETE", f.user, `{}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(body), "VALIDATION_FAILED")
	assert.Equal(t, []string{f.user.String() + " right", f.user.String() + " wrong"}, got)
}

// TestEraseGivesEveryExporterTheAddresses: the subject's addresses are
// resolved before anything is erased, and every exporter sees them.
func TestEraseGivesEveryExporterTheAddresses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := &probe{}, &probe{}
	svc := f.service(t, a, b)
	_, err := f.db.Runtime.Exec(bg, `UPDATE auth.users SET email = 'new@example.test', updated_at = now() WHERE id = $1`, f.user)
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(bg, f.db.Runtime, func(tx pgx.Tx) error { return svc.Erase(bg, tx, f.user) }))
	want := gdpr.Subject{UserID: f.user, Emails: []string{"new@example.test", "data@example.test"}}
	assert.Equal(t, []gdpr.Subject{want}, a.erased)
	assert.Equal(t, []gdpr.Subject{want}, b.erased)

	b.fail = errors.New("refused")
	err = pgx.BeginFunc(bg, f.db.Runtime, func(tx pgx.Tx) error { return svc.Erase(bg, tx, f.user) })
	assert.ErrorIs(t, err, b.fail)
}

func TestNewRefusesAnIncompleteConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ok := gdpr.Config{Pool: f.db.Runtime, Users: users{}, Addresses: f.gate, Exporters: []gdpr.Exporter{f.gate},
		Exported: func(context.Context, uuid.UUID, gdpr.Client) error { return nil }}
	_, err := gdpr.New(ok)
	require.NoError(t, err)
	for name, mod := range map[string]func(*gdpr.Config){
		"pool":      func(c *gdpr.Config) { c.Pool = nil },
		"users":     func(c *gdpr.Config) { c.Users = nil },
		"addresses": func(c *gdpr.Config) { c.Addresses = nil },
		"exporters": func(c *gdpr.Config) { c.Exporters = nil },
		"nil one":   func(c *gdpr.Config) { c.Exporters = []gdpr.Exporter{nil} },
		"exported":  func(c *gdpr.Config) { c.Exported = nil },
	} {
		c := ok
		mod(&c)
		_, err := gdpr.New(c)
		assert.Error(t, err, name)
	}
	svc, _ := gdpr.New(ok)
	for name, o := range map[string]gdpr.HandlerOptions{
		"user":    {Limiter: f.limiter(t), Delete: func(context.Context, uuid.UUID, string, gdpr.Client) error { return nil }},
		"limiter": {UserFromRequest: func(*http.Request) (uuid.UUID, error) { return uuid.Nil, nil }, Delete: func(context.Context, uuid.UUID, string, gdpr.Client) error { return nil }},
		"delete":  {UserFromRequest: func(*http.Request) (uuid.UUID, error) { return uuid.Nil, nil }, Limiter: f.limiter(t)},
	} {
		_, err := gdpr.NewHandler(svc, o)
		assert.Error(t, err, name)
	}
}

func (f *fixture) limiter(t testing.TB) gdpr.Limiter {
	t.Helper()
	l, err := lockout.NewMemoryLimiter(lockout.MemoryConfig{Rate: lockout.Rate{Limit: 1, Period: time.Hour}})
	require.NoError(t, err)
	return l
}
