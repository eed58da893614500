package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// driver sends a scenario's calls to the target.
type driver struct {
	base string // target URL without a trailing slash
	hc   *http.Client
	src  Source
	rec  *Recorder
	// retryAfter: in the closed loop a worker waits out an answer's
	// Retry-After before its next call.
	retryAfter bool
}

// header builds the request headers of c.
func (c Call) header() http.Header {
	h := http.Header{"User-Agent": {"mana-auth-loadtest"}}
	if c.Body != nil {
		h.Set("Content-Type", "application/json")
	}
	if c.Bearer != "" {
		h.Set("Authorization", "Bearer "+c.Bearer)
	}
	return h
}

// do sends slot's next call and returns its answer, timed from just
// before the request is written until its body is read.
func (d *driver) do(ctx context.Context, slot int) answer {
	c := d.src.Next(slot)
	a := answer{Kind: c.Kind, Want: c.Want}
	var body io.Reader
	if c.Body != nil {
		body = bytes.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, d.base+c.Path, body)
	if err != nil {
		a.Err = err
		return a
	}
	req.Header = c.header()
	start := time.Now()
	resp, err := d.hc.Do(req)
	if err == nil {
		ra := resp.Header.Get("Retry-After")
		a.Status, a.RetryAfter = resp.StatusCode, ra != ""
		if secs, err := strconv.Atoi(ra); err == nil && secs > 0 {
			a.RetryWait = time.Duration(secs) * time.Second
		}
		a.Body, err = io.ReadAll(resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			a.Status = 0 // the answer did not arrive whole
		}
	}
	a.Latency = time.Since(start)
	a.Err = err
	if c.After != nil {
		c.After(a.Status, a.Body)
	}
	return a
}

// runClosed runs workers closed loops (each sends its next call when the
// previous one is answered) for warmup and then d. Only answers that
// arrive within d after the warm-up are recorded; the calls still in
// flight at the end are waited for, not counted.
func (d *driver) runClosed(ctx context.Context, workers int, warmup, dur time.Duration) (measured time.Duration) {
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+dur)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(warmup, func() { d.rec.recording.Store(true) })
	defer timer.Stop()
	stopper := time.AfterFunc(warmup+dur, func() { d.rec.recording.Store(false) })
	defer stopper.Stop()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				a := d.do(ctx, w)
				d.rec.Record(a)
				if d.retryAfter && a.RetryWait > 0 {
					pause := time.NewTimer(min(a.RetryWait, time.Until(end)))
					select {
					case <-pause.C:
					case <-ctx.Done():
						pause.Stop()
					}
				}
			}
		})
	}
	wg.Wait()
	d.rec.recording.Store(false)
	if ctx.Err() != nil { // interrupted: the window ended early
		return time.Since(measureFrom)
	}
	return dur
}

// Open loop. vegeta's attacker sends at the fixed rate whatever the
// answers do: when every worker waits for an answer it starts another
// instead of delaying the send, so a slow server cannot slow the
// generator down (no coordinated omission). Its Result.Latency starts
// when a worker takes the tick; the harness measures from the intended
// send time itself (start + seq/rate), so even a generator that fell
// behind its schedule counts the delay.
//
// The scenario's calls are fitted into vegeta's Targeter/Result shapes:
// the targeter leases a slot and writes it in a header, the round tripper
// removes the header, runs the call's After with the answer and returns
// the slot, and remembers kind and wanted status under vegeta's sequence
// number for the result loop.

const slotHeader = "X-Loadtest-Slot"

type openLoop struct {
	d     *driver
	free  chan int
	calls []Call // the call in flight, by slot
	meta  sync.Map
	base  http.RoundTripper
}

type callMeta struct {
	kind string
	want int
}

func (o *openLoop) target(ctx context.Context) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		var slot int
		select {
		case slot = <-o.free:
		case <-ctx.Done():
			return ctx.Err()
		}
		c := o.d.src.Next(slot)
		o.calls[slot] = c
		t.Method, t.URL, t.Body = c.Method, o.d.base+c.Path, c.Body
		t.Header = c.header()
		t.Header.Set(slotHeader, strconv.Itoa(slot))
		return nil
	}
}

// RoundTrip implements http.RoundTripper.
func (o *openLoop) RoundTrip(req *http.Request) (*http.Response, error) {
	slot, err := strconv.Atoi(req.Header.Get(slotHeader))
	if err != nil || slot < 0 || slot >= len(o.calls) {
		return nil, fmt.Errorf("loadtest: request without a valid %s header", slotHeader)
	}
	c := o.calls[slot]
	defer func() { o.free <- slot }()
	if seq, err := strconv.ParseUint(req.Header.Get("X-Vegeta-Seq"), 10, 64); err == nil {
		o.meta.Store(seq, callMeta{kind: c.Kind, want: c.Want})
	}
	req = req.Clone(req.Context())
	req.Header.Del(slotHeader)
	req.Header.Del("X-Vegeta-Seq")
	req.Header.Del("X-Vegeta-Attack")
	resp, err := o.base.RoundTrip(req)
	if err != nil {
		if c.After != nil {
			c.After(0, nil)
		}
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if c.After != nil {
			c.After(0, nil)
		}
		return nil, err
	}
	if c.After != nil {
		c.After(resp.StatusCode, body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// runOpen sends rate calls per second for warmup and then dur, at most
// slots in flight (a call that finds every slot busy waits for one, and
// the wait counts in its latency). Calls scheduled within dur after the
// warm-up are recorded, each with its latency from its intended send time.
func (d *driver) runOpen(ctx context.Context, rate, slots int, warmup, dur time.Duration) time.Duration {
	o := &openLoop{d: d, free: make(chan int, slots), calls: make([]Call, slots), base: d.hc.Transport}
	for i := range slots {
		o.free <- i
	}
	hc := *d.hc
	hc.Transport = o
	atk := vegeta.NewAttacker(vegeta.Client(&hc), vegeta.Workers(uint64(min(slots, 64))), vegeta.MaxBody(1<<20)) // #nosec G115 -- slots is a validated positive worker count
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		atk.Stop()
	}()
	period := time.Second / time.Duration(rate)
	d.rec.recording.Store(true)
	defer d.rec.recording.Store(false)
	start := time.Now()
	measureFrom := start.Add(warmup)
	for res := range atk.Attack(o.target(ctx), vegeta.Rate{Freq: rate, Per: time.Second}, warmup+dur, "loadtest") {
		// vegeta's constant pacer sends request n (from 0) at (n+1)
		// periods after the attack begins, not at n periods: counting from
		// n would add one period to every latency (250 ms at -rate 4).
		intended := start.Add(time.Duration(res.Seq+1) * period) // #nosec G115 -- Seq numbers the requests of one run, far below 2^63
		m, _ := o.meta.LoadAndDelete(res.Seq)
		meta, ok := m.(callMeta)
		if intended.Before(measureFrom) {
			continue
		}
		if !ok { // the request was never sent (the targeter gave up)
			meta = callMeta{kind: "-", want: http.StatusOK}
		}
		a := answer{Kind: meta.kind, Want: meta.want, Status: int(res.Code), Body: res.Body,
			RetryAfter: res.Headers.Get("Retry-After") != "", Latency: max(res.Latency, res.End().Sub(intended))}
		if res.Code == 0 {
			a.Err = errors.New(res.Error)
		}
		d.rec.Record(a)
	}
	if ctx.Err() != nil {
		return time.Since(measureFrom)
	}
	return dur
}
