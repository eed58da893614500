package main

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to 10 minutes, with 3
// significant digits (HdrHistogram's usual precision: 0.1 %).
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

// answer is one finished call as the recorder sees it.
type answer struct {
	Kind       string
	Want       int
	Status     int // 0: failed in transport
	Body       []byte
	RetryAfter bool          // the answer carried Retry-After
	RetryWait  time.Duration // its value, when in whole seconds
	Err        error
	Latency    time.Duration
}

// outcome sorts an answer into success, shed (503 SERVICE_UNAVAILABLE
// with Retry-After: the server refusing work it cannot take now, which a
// flood is expected to meet) and error (everything else).
type outcome int

const (
	outcomeOK outcome = iota
	outcomeShed
	outcomeError
)

// errKey groups failures by call kind, status and error code.
type errKey struct {
	Kind       string
	Status     int
	Code       string
	RetryAfter bool
}

// kindStats is the latency of one kind of call: successful answers in ok
// (admitted requests), every other answer in failed.
type kindStats struct {
	ok, failed *hdrhistogram.Histogram
}

// Recorder collects answers. It is safe for concurrent use; progress
// counters are atomic, histograms and error counts behind a mutex.
type Recorder struct {
	recording atomic.Bool
	n, ok     atomic.Int64
	shed, bad atomic.Int64

	mu    sync.Mutex
	kinds map[string]*kindStats
	errs  map[errKey]int64
	first map[errKey]string // the first message of each error, for the report
}

func newRecorder() *Recorder {
	return &Recorder{kinds: map[string]*kindStats{}, errs: map[errKey]int64{}, first: map[errKey]string{}}
}

// Record files one answer; answers that arrive while the recorder is off
// (warm-up) are dropped.
func (r *Recorder) Record(a answer) {
	if !r.recording.Load() {
		return
	}
	oc, key, msg := classify(a)
	r.n.Add(1)
	switch oc {
	case outcomeOK:
		r.ok.Add(1)
	case outcomeShed:
		r.shed.Add(1)
	default:
		r.bad.Add(1)
	}
	us := max(histMin, min(histMax, a.Latency.Microseconds()))
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kinds[a.Kind]
	if k == nil {
		k = &kindStats{ok: hdrhistogram.New(histMin, histMax, histDigits), failed: hdrhistogram.New(histMin, histMax, histDigits)}
		r.kinds[a.Kind] = k
	}
	h := k.ok
	if oc != outcomeOK {
		h = k.failed
		r.errs[key]++
		if _, seen := r.first[key]; !seen {
			r.first[key] = msg
		}
	}
	if err := h.RecordValue(us); err != nil {
		panic("loadtest: a latency clamped into the histogram's range was refused: " + err.Error())
	}
}

// classify returns an answer's outcome and, for failures, its group and
// message.
func classify(a answer) (outcome, errKey, string) {
	key := errKey{Kind: a.Kind, Status: a.Status, RetryAfter: a.RetryAfter}
	if a.Err != nil || a.Status == 0 {
		key.Code = transportClass(a.Err)
		msg := "no answer"
		if a.Err != nil {
			msg = a.Err.Error()
		}
		return outcomeError, key, msg
	}
	if a.Status == a.Want {
		return outcomeOK, key, ""
	}
	e := envelopeOf(a.Body)
	key.Code = e.Code
	if a.Status == http.StatusServiceUnavailable && e.Code == "SERVICE_UNAVAILABLE" && a.RetryAfter {
		return outcomeShed, key, e.Message
	}
	return outcomeError, key, e.Message
}

// transportClass names a transport failure by kind, without the URL and
// addresses of its text.
func transportClass(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "transport"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	// Open-loop results carry only the text.
	s := err.Error()
	for _, c := range []struct{ sub, class string }{
		{"Client.Timeout", "timeout"}, {"deadline exceeded", "timeout"}, {"i/o timeout", "timeout"},
		{"connection refused", "connection refused"}, {"connection reset", "connection reset"},
		{"EOF", "connection closed"}, {"canceled", "canceled"},
	} {
		if strings.Contains(s, c.sub) {
			return c.class
		}
	}
	return "transport"
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"meanMs"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{Count: h.TotalCount(), Mean: h.Mean() / 1000, P50: ms(h.ValueAtQuantile(50)),
		P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)), Max: ms(h.Max())}
}

// KindReport is one kind of call.
type KindReport struct {
	Kind     string  `json:"kind"`
	Requests int64   `json:"requests"`
	PerSec   float64 `json:"perSecond"`
	OK       Latency `json:"ok"`     // successful (admitted) answers
	Failed   Latency `json:"failed"` // every other answer
}

// ErrorCount is one group of failed answers.
type ErrorCount struct {
	Kind       string `json:"kind"`
	Status     int    `json:"status"` // 0: no answer (transport)
	Code       string `json:"code"`   // the envelope's code, "-" without one, or the transport failure
	RetryAfter bool   `json:"retryAfter"`
	Shed       bool   `json:"shed"` // 503 SERVICE_UNAVAILABLE with Retry-After
	Count      int64  `json:"count"`
	Example    string `json:"example"` // the first message
}

// summary is what the recorder holds at the end of the measured phase.
type summary struct {
	requests, ok, shed, errors int64
	all                        Latency // successful answers of every kind
	kinds                      []KindReport
	errs                       []ErrorCount
}

func (r *Recorder) summary(elapsed time.Duration) summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := summary{requests: r.n.Load(), ok: r.ok.Load(), shed: r.shed.Load(), errors: r.bad.Load()}
	all := hdrhistogram.New(histMin, histMax, histDigits)
	for kind, k := range r.kinds {
		all.Merge(k.ok)
		n := k.ok.TotalCount() + k.failed.TotalCount()
		s.kinds = append(s.kinds, KindReport{Kind: kind, Requests: n, PerSec: perSecond(n, elapsed),
			OK: latencyOf(k.ok), Failed: latencyOf(k.failed)})
	}
	s.all = latencyOf(all)
	slices.SortFunc(s.kinds, func(a, b KindReport) int { return cmp.Compare(a.Kind, b.Kind) })
	for k, n := range r.errs {
		shed := k.Status == http.StatusServiceUnavailable && k.Code == "SERVICE_UNAVAILABLE" && k.RetryAfter
		s.errs = append(s.errs, ErrorCount{Kind: k.Kind, Status: k.Status, Code: k.Code, RetryAfter: k.RetryAfter,
			Shed: shed, Count: n, Example: r.first[k]})
	}
	slices.SortFunc(s.errs, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Status, b.Status), cmp.Compare(a.Code, b.Code))
	})
	return s
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
