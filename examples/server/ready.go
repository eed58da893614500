package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/migrate"
	"github.com/mana-how/mana-auth/web"
)

// readiness answers /readyz: the database answers, every migration the
// server embeds is applied, and every table and column its code uses exists
// (migrate.CheckContract). Each probe asks the database anew, bounded by a
// short timeout, so a stopped database turns it 503 within seconds and a
// restarted one turns it 200 again without restarting the server. A change
// of state is logged once, naming precisely what is missing.
type readiness struct {
	pool    *pgxpool.Pool
	sources []migrate.Source
	logger  *slog.Logger
	timeout time.Duration
	errs    autherr.Writer
	// extra are further checks (the vault's KEK ids), run after the
	// schema matches; added with addCheck.
	extra []*readyCheck

	mu   sync.Mutex
	last string // the last problem logged, "" when ready
}

type readyProblem struct {
	Check  string   `json:"check"`
	Detail []string `json:"detail,omitempty"`
}

// check returns the problems found; none means ready.
func (rd *readiness) check(ctx context.Context) []readyProblem {
	ctx, cancel := context.WithTimeout(ctx, rd.timeout)
	defer cancel()
	if err := rd.pool.Ping(ctx); err != nil {
		rd.logChange("database unreachable", "err", err)
		return []readyProblem{{Check: "database"}}
	}
	var problems []readyProblem
	pending, err := migrate.Pending(ctx, rd.pool, rd.sources...)
	if err != nil {
		rd.logChange("cannot read applied migrations", "err", err)
		return []readyProblem{{Check: "migrations"}}
	}
	if len(pending) > 0 {
		problems = append(problems, readyProblem{Check: "migrations", Detail: pending})
	}
	drift, err := migrate.CheckContract(ctx, rd.pool, rd.sources...)
	if err != nil {
		rd.logChange("cannot read the schema catalogue", "err", err)
		return append(problems, readyProblem{Check: "schema"})
	}
	if len(drift) > 0 {
		var d []string
		for _, x := range drift {
			d = append(d, x.String())
		}
		problems = append(problems, readyProblem{Check: "schema", Detail: d})
	}
	if len(problems) == 0 {
		for _, c := range rd.extra {
			detail, err := c.run(ctx)
			if err != nil {
				rd.logChange("cannot run the readiness check "+c.name, "err", err)
				return []readyProblem{{Check: c.name}}
			}
			if len(detail) > 0 {
				problems = append(problems, readyProblem{Check: c.name, Detail: detail})
			}
		}
	}
	if len(problems) == 0 {
		rd.logChange("")
		return nil
	}
	var parts []string
	for _, p := range problems {
		parts = append(parts, p.Check+": "+strings.Join(p.Detail, ", "))
	}
	rd.logChange("not ready: " + strings.Join(parts, "; "))
	return problems
}

// logChange logs msg when it differs from the last state logged.
func (rd *readiness) logChange(msg string, args ...any) {
	key := msg + fmt.Sprint(args...)
	rd.mu.Lock()
	changed := key != rd.last
	rd.last = key
	rd.mu.Unlock()
	if !changed {
		return
	}
	if msg == "" {
		rd.logger.Info("ready: database reachable, migrations current, schema matches the code")
		return
	}
	rd.logger.Error(msg, args...)
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if problems := rd.check(r.Context()); len(problems) > 0 {
		// What exactly is missing went to the log (check logs each change
		// of state once); the answer is the plain 503 envelope, written
		// without a log record of its own so that probes every few seconds
		// do not flood the log.
		rd.errs.Write(w, r, autherr.New(autherr.ServiceUnavailable, "not ready"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if err := web.JSON(w, http.StatusOK, map[string]any{"status": "ready"}); err != nil {
		rd.logger.Warn("write /readyz", "err", err)
	}
}

// readyCheck is one further readiness check: detail lists what is wrong,
// nothing when all is well. Its answer is kept for every, so that probes
// every few seconds do not repeat an expensive query; a problem found is
// checked again at the next probe after every.
type readyCheck struct {
	name  string
	every time.Duration
	fn    func(ctx context.Context) ([]string, error)

	mu     sync.Mutex
	at     time.Time
	detail []string
}

func (c *readyCheck) run(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.every {
		return c.detail, nil
	}
	detail, err := c.fn(ctx)
	if err != nil {
		return nil, err
	}
	c.at, c.detail = time.Now(), detail
	return detail, nil
}

// addCheck adds a further readiness check (before the server serves).
func (rd *readiness) addCheck(name string, every time.Duration, fn func(ctx context.Context) ([]string, error)) {
	rd.extra = append(rd.extra, &readyCheck{name: name, every: every, fn: fn})
}
