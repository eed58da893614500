// Command loadtest is mana-auth's load harness: it drives a running
// server over HTTP with one scenario — closed loop (-c workers, each
// sending its next request when the last was answered) or open loop at a
// fixed rate (-rate, latency measured from the intended send time) — and
// reports requests per second, latency percentiles of the successful
// answers, failures by status and error code, the server's resident
// memory and, for sign-in, the share of the bare argon2id bound reached.
//
// It seeds its own users through the API, so the server must run with
// MANA_AUTH_REQUIRE_EMAIL_VERIFICATION=false (register then answers with
// tokens) and MANA_AUTH_IP_RATE=0 (every request comes from one IP; for
// passkey-login also MANA_AUTH_PASSKEY_OPTIONS_RATE=0). It
// loads only loopback targets unless -allow-host names the target's host.
//
//	loadtest -scenario login -c 8 -d 20s -pid $(pgrep -n server)
//	loadtest -scenario validate -rate 5000 -c 256 -d 30s -json
//
// See docs/capacity.md for the method and the figures measured with it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes of run.
const (
	exitOK     = 0
	exitErrors = 1 // the run had failures other than shed load, or could not run
	exitUsage  = 2
)

// config is the parsed command line.
type config struct {
	target    *url.URL
	scenario  Scenario
	c         int
	d, warmup time.Duration
	rate      int
	users     int
	pid       int
	json      bool
	progress  time.Duration
	bound     time.Duration
	timeout   time.Duration
	seedC     int
	retry     bool // closed loop: a worker waits out Retry-After
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		target    = fs.String("url", "http://127.0.0.1:8080", "base URL of the server")
		allowHost = fs.String("allow-host", "", "load this host although it is not loopback (the target's exact host name or address)")
		name      = fs.String("scenario", "", "what to send (see below)")
		c         = fs.Int("c", 8, "closed loop: workers; open loop: slots (sessions) the requests draw from, i.e. at most this many in flight")
		d         = fs.Duration("d", 10*time.Second, "measured duration")
		warmup    = fs.Duration("warmup", time.Second, "load before the measured duration, not recorded")
		rate      = fs.Int("rate", 0, "open loop: requests per second (0: closed loop)")
		retry     = fs.Bool("retry-after", false, "closed loop: a worker whose answer carries Retry-After waits that long before its next call, as a well-behaved client does (default: it calls again at once, the worst case)")
		users     = fs.Int("users", 0, "users to seed (0: as many as -c, at most 64)")
		pid       = fs.Int("pid", 0, "the server's process id, to read its memory from /proc (default: its /metrics)")
		jsonOut   = fs.Bool("json", false, "print the report as JSON")
		progress  = fs.Duration("progress", time.Second, "interval of the progress line on stderr (0: none)")
		bound     = fs.Duration("bound", 3*time.Second, "login: how long to measure the bare hash bound before the run (0: skip)")
		timeout   = fs.Duration("timeout", 30*time.Second, "per-request timeout")
		seedC     = fs.Int("seed-c", 4, "registrations and logins in parallel while seeding")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: loadtest -scenario NAME [flags]\n\nScenarios:\n")
		for _, s := range scenarios() {
			fmt.Fprintf(fs.Output(), "  %-13s %s\n", s.Name, s.Help)
		}
		fmt.Fprintf(fs.Output(), "\nThe server must run with MANA_AUTH_REQUIRE_EMAIL_VERIFICATION=false and MANA_AUTH_IP_RATE=0 (and, for passkey-login, MANA_AUTH_PASSKEY_OPTIONS_RATE=0).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if fs.NArg() > 0 {
		bad("unexpected argument %q (flags come as -name value)", fs.Arg(0))
	}
	cfg := config{c: *c, d: *d, warmup: *warmup, rate: *rate, users: *users, pid: *pid, json: *jsonOut,
		progress: *progress, bound: *bound, timeout: *timeout, seedC: *seedC, retry: *retry}
	sc, err := lookupScenario(*name)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.scenario = sc
	if cfg.target, err = checkTarget(*target, *allowHost); err != nil {
		errs = append(errs, err)
	}
	switch {
	case cfg.c < 1:
		bad("-c %d: must be at least 1", cfg.c)
	case cfg.c > 100000:
		bad("-c %d: at most 100000", cfg.c)
	}
	if cfg.d <= 0 {
		bad("-d %v: must be positive", cfg.d)
	}
	if cfg.warmup < 0 {
		bad("-warmup %v: must not be negative", cfg.warmup)
	}
	if cfg.rate < 0 {
		bad("-rate %d: must not be negative (0: closed loop)", cfg.rate)
	}
	if cfg.retry && cfg.rate > 0 {
		bad("-retry-after: closed loop only (an open loop sends at its rate whatever the answers)")
	}
	if cfg.users < 0 {
		bad("-users %d: must not be negative", cfg.users)
	}
	if cfg.users == 0 {
		cfg.users = min(cfg.c, 64)
	}
	if cfg.pid < 0 {
		bad("-pid %d: must not be negative", cfg.pid)
	}
	if cfg.progress < 0 || cfg.bound < 0 {
		bad("-progress and -bound must not be negative")
	}
	if cfg.timeout <= 0 {
		bad("-timeout %v: must be positive", cfg.timeout)
	}
	if cfg.seedC < 1 {
		bad("-seed-c %d: must be at least 1", cfg.seedC)
	}
	return cfg, errors.Join(errs...)
}

// checkTarget parses the target URL and refuses a host that is not
// loopback unless allow names it: a load test is an attack on whatever it
// points at.
func checkTarget(raw, allow string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("-url %q: want an absolute http(s) URL without query, e.g. http://127.0.0.1:8080", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	host := u.Hostname()
	if allow != "" && strings.EqualFold(host, allow) {
		return u, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return u, nil
	}
	if h := strings.ToLower(host); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return u, nil
	}
	if allow != "" {
		return nil, fmt.Errorf("-url host %q is not the host -allow-host names (%q)", host, allow)
	}
	return nil, fmt.Errorf("-url host %q is not loopback; to load it, name it: -allow-host %s", host, host)
}

// Report is the result of a run (-json prints it as is).
type Report struct {
	Scenario    string    `json:"scenario"`
	Target      string    `json:"target"`
	Mode        string    `json:"mode"` // closed or open
	Concurrency int       `json:"concurrency"`
	Rate        int       `json:"rate,omitempty"`
	Users       int       `json:"users"`
	StartedAt   time.Time `json:"startedAt"`
	Seconds     float64   `json:"seconds"` // measured duration
	WarmupSecs  float64   `json:"warmupSeconds"`

	Requests    int64   `json:"requests"`
	OK          int64   `json:"ok"`
	Shed        int64   `json:"shed"`   // 503 SERVICE_UNAVAILABLE with Retry-After
	Errors      int64   `json:"errors"` // every other failure
	PerSecond   float64 `json:"perSecond"`
	OKPerSecond float64 `json:"okPerSecond"`
	// Latency of the successful (admitted) answers of every kind.
	Latency  Latency       `json:"latency"`
	Kinds    []KindReport  `json:"kinds"`
	Failures []ErrorCount  `json:"failures"`
	Bound    *HashBound    `json:"hashBound,omitempty"`
	Memory   *ServerMemory `json:"serverMemory,omitempty"`
	Machine  MachineReport `json:"machine"`
	Notes    []string      `json:"notes,omitempty"`

	elapsed time.Duration // the measured window
}

// MachineReport says how loaded the machine was: the figures of a run on
// a busy machine are not those of a quiet one.
type MachineReport struct {
	Cores         int        `json:"cores"`
	LoadAvgBefore [3]float64 `json:"loadAvgBefore"`
	LoadAvgAfter  [3]float64 `json:"loadAvgAfter"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n(loadtest -h for usage)\n", err)
		return exitUsage
	}
	rep, err := load(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return exitErrors
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return exitErrors
		}
	} else if err := rep.writeText(stdout); err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return exitErrors
	}
	if rep.Errors > 0 {
		return exitErrors
	}
	return exitOK
}

// newClient is the HTTP client of the run: keep-alive connections, enough
// of them idle for every worker, no compression.
func newClient(cfg config) *http.Client {
	t := &http.Transport{
		Proxy:               nil, // never through a proxy: the target is what was checked
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: cfg.c + cfg.seedC + 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: t, Timeout: cfg.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// load seeds, measures the hash bound (login), runs the scenario and
// gathers the report.
func load(ctx context.Context, cfg config, status io.Writer) (*Report, error) {
	hc := newClient(cfg)
	defer hc.CloseIdleConnections()
	base := cfg.target.String()
	rep := &Report{Scenario: cfg.scenario.Name, Target: base, Mode: "closed", Concurrency: cfg.c, Rate: cfg.rate,
		Users: cfg.users, StartedAt: time.Now().UTC(), WarmupSecs: cfg.warmup.Seconds(),
		Machine: MachineReport{Cores: runtime.NumCPU(), LoadAvgBefore: loadAvg()}}
	if cfg.rate > 0 {
		rep.Mode = "open"
	}

	// Is it there at all? A clear message beats a thousand refused
	// connections.
	if err := (&api{base: base, hc: hc}).do(ctx, http.MethodGet, "/healthz", "", nil, http.StatusOK, nil); err != nil {
		return nil, fmt.Errorf("the target does not answer GET /healthz: %w", err)
	}

	probe := &memProbe{pid: cfg.pid, metricsURL: base + "/metrics", hc: hc}
	mem := &ServerMemory{Source: probe.source()}
	var memErrs []error
	if rss, _, err := probe.read(ctx); err != nil {
		memErrs = append(memErrs, err)
	} else {
		mem.StartMiB = float64(rss) / mib
	}

	env := &Env{api: &api{base: base, hc: hc}, users: cfg.users, slots: cfg.c, seedC: cfg.seedC,
		runID: newRunID(), status: status}
	src, err := cfg.scenario.Prepare(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.scenario.Name, err)
	}

	var boundBefore float64
	if cfg.scenario.Login && cfg.bound > 0 {
		fmt.Fprintf(status, "measuring the bare argon2id bound for %v on %d cores\n", cfg.bound, runtime.GOMAXPROCS(0))
		if boundBefore, err = measureHashBound(ctx, cfg.bound); err != nil {
			return nil, err
		}
	}

	if rss, _, err := probe.read(ctx); err != nil {
		memErrs = append(memErrs, err)
	} else {
		mem.BeforeMiB = float64(rss) / mib
	}

	rec := newRecorder()
	d := &driver{base: base, hc: hc, src: src, rec: rec, retryAfter: cfg.retry}
	sampler := probe.sample(ctx, 250*time.Millisecond)
	stopProgress := startProgress(ctx, status, rec, cfg)
	mode := fmt.Sprintf("closed loop, %d workers", cfg.c)
	if cfg.retry {
		mode += " honoring Retry-After"
	}
	if cfg.rate > 0 {
		mode = fmt.Sprintf("open loop, %d/s, %d slots", cfg.rate, cfg.c)
	}
	fmt.Fprintf(status, "running %s: %s for %v after %v of warm-up\n", cfg.scenario.Name, mode, cfg.d, cfg.warmup)
	if cfg.rate > 0 {
		rep.elapsed = d.runOpen(ctx, cfg.rate, cfg.c, cfg.warmup, cfg.d)
	} else {
		rep.elapsed = d.runClosed(ctx, cfg.c, cfg.warmup, cfg.d)
	}
	stopProgress()
	peak, err := sampler.end()
	if err != nil {
		memErrs = append(memErrs, err)
	}
	mem.PeakMiB = float64(peak) / mib
	if rss, hwm, err := probe.read(ctx); err != nil {
		memErrs = append(memErrs, err)
	} else {
		mem.AfterMiB, mem.HWMMiB = float64(rss)/mib, float64(hwm)/mib
		mem.PeakMiB = max(mem.PeakMiB, mem.AfterMiB)
	}
	if boundBefore > 0 && ctx.Err() == nil {
		fmt.Fprintf(status, "measuring the bare argon2id bound again for %v\n", cfg.bound)
		after, err := measureHashBound(ctx, cfg.bound)
		if err != nil {
			return nil, err
		}
		rep.Bound = &HashBound{Cores: runtime.GOMAXPROCS(0)}
		rep.Bound.combine(boundBefore, after)
	}
	if len(memErrs) < 4 { // something was read
		rep.Memory = mem
	}
	if len(memErrs) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("server memory: %v", memErrs[0]))
	}
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "interrupted: the figures cover the part that ran")
	}

	s := rec.summary(rep.elapsed)
	rep.Seconds = rep.elapsed.Seconds()
	rep.Requests, rep.OK, rep.Shed, rep.Errors = s.requests, s.ok, s.shed, s.errors
	rep.PerSecond, rep.OKPerSecond = perSecond(s.requests, rep.elapsed), perSecond(s.ok, rep.elapsed)
	rep.Latency, rep.Kinds, rep.Failures = s.all, s.kinds, s.errs
	if rep.Kinds == nil {
		rep.Kinds = []KindReport{}
	}
	if rep.Failures == nil {
		rep.Failures = []ErrorCount{}
	}
	if rep.Bound != nil {
		var logins int64
		for _, k := range rep.Kinds {
			if k.Kind == "login" {
				logins = k.OK.Count
			}
		}
		rep.Bound.ReachedPct = 100 * perSecond(logins, rep.elapsed) / rep.Bound.PerSecond
	}
	rep.Machine.LoadAvgAfter = loadAvg()
	return rep, nil
}

// startProgress prints a progress line every cfg.progress until the
// returned function is called.
func startProgress(ctx context.Context, w io.Writer, rec *Recorder, cfg config) (stop func()) {
	if cfg.progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(cfg.progress)
		defer t.Stop()
		start := time.Now()
		var last int64
		lastAt := start
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				n := rec.n.Load()
				if !rec.recording.Load() && n == 0 {
					fmt.Fprintf(w, "[%4.0fs] warming up\n", now.Sub(start).Seconds())
					continue
				}
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				fmt.Fprintf(w, "[%4.0fs] %d requests  %.0f/s  ok %d  shed %d  errors %d\n",
					now.Sub(start).Seconds(), n, rate, rec.ok.Load(), rec.shed.Load(), rec.bad.Load())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// loadAvg reads /proc/loadavg (zeros where there is none).
func loadAvg() [3]float64 {
	var la [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return la
	}
	for i, f := range strings.Fields(string(b)) {
		if i == 3 {
			break
		}
		la[i], _ = strconv.ParseFloat(f, 64) // a malformed field stays 0
	}
	return la
}

// writeText prints the report for people.
func (r *Report) writeText(w io.Writer) error {
	var b strings.Builder
	mode := fmt.Sprintf("closed loop c=%d", r.Concurrency)
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop %d/s (%d slots)", r.Rate, r.Concurrency)
	}
	fmt.Fprintf(&b, "scenario %s   %s   %s   %.0fs (+%.0fs warm-up)   %d users\n",
		r.Scenario, r.Target, mode, r.Seconds, r.WarmupSecs, r.Users)
	fmt.Fprintf(&b, "requests %d   %.1f/s   ok %d (%.1f/s)   shed %d   errors %d\n",
		r.Requests, r.PerSecond, r.OK, r.OKPerSecond, r.Shed, r.Errors)
	l := r.Latency
	fmt.Fprintf(&b, "latency of successful answers   p50 %s   p90 %s   p99 %s   max %s   mean %s\n",
		ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), ms(l.Mean))
	if hb := r.Bound; hb != nil {
		fmt.Fprintf(&b, "hash bound   %.1f logins/s = %d cores ÷ %.1f ms per argon2id (before %.1f/s, after %.1f/s)   reached %.1f %%\n",
			hb.PerSecond, hb.Cores, hb.HashMs, hb.Before, hb.After, hb.ReachedPct)
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(&b, "server RSS   start %.1f MiB   before %.1f MiB   peak %.1f MiB   after %.1f MiB",
			m.StartMiB, m.BeforeMiB, m.PeakMiB, m.AfterMiB)
		if m.HWMMiB > 0 {
			fmt.Fprintf(&b, "   high-water %.1f MiB", m.HWMMiB)
		}
		fmt.Fprintf(&b, "   (%s)\n", m.Source)
	}
	la, lb := r.Machine.LoadAvgBefore, r.Machine.LoadAvgAfter
	fmt.Fprintf(&b, "machine   %d cores   load average before %.2f %.2f %.2f   after %.2f %.2f %.2f\n",
		r.Machine.Cores, la[0], la[1], la[2], lb[0], lb[1], lb[2])
	if len(r.Kinds) > 1 {
		b.WriteString("\nby kind (successful answers)\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "kind\trequests\t/s\tp50\tp90\tp99\tmax\t")
		for _, k := range r.Kinds {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t\n", k.Kind, k.Requests, k.PerSec,
				ms(k.OK.P50), ms(k.OK.P90), ms(k.OK.P99), ms(k.OK.Max))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Failures) > 0 {
		b.WriteString("\nfailures by status and code\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, f := range r.Failures {
			status := strconv.Itoa(f.Status)
			if f.Status == 0 {
				status = "no answer"
			}
			var tags []string
			if f.RetryAfter {
				tags = append(tags, "Retry-After")
			}
			if f.Shed {
				tags = append(tags, "shed")
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%q\n", f.Kind, status, f.Code, f.Count, strings.Join(tags, ","), f.Example)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}
