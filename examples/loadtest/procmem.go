package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServerMemory is the server's resident memory around the run, in MiB.
type ServerMemory struct {
	Source    string  `json:"source"`           // /proc/<pid>/status (-pid) or the server's /metrics
	StartMiB  float64 `json:"startMiB"`         // when the harness started, before seeding: idle, for a freshly started server
	BeforeMiB float64 `json:"beforeMiB"`        // after seeding, before the load
	PeakMiB   float64 `json:"peakMiB"`          // highest sample during the load (every 250 ms)
	AfterMiB  float64 `json:"afterMiB"`         // when the load ended
	HWMMiB    float64 `json:"hwmMiB,omitempty"` // VmHWM: the kernel's peak since the server started (-pid only)
}

// memProbe reads the server's resident set: from /proc/<pid>/status when
// the harness is given the pid (the server runs on this machine), else
// process_resident_memory_bytes from its /metrics.
type memProbe struct {
	pid        int
	metricsURL string
	hc         *http.Client
}

const mib = 1 << 20

func (p *memProbe) source() string {
	if p.pid > 0 {
		return fmt.Sprintf("/proc/%d/status", p.pid)
	}
	return p.metricsURL
}

// read returns the resident set and, from /proc, its high-water mark
// (0 from /metrics), in bytes.
func (p *memProbe) read(ctx context.Context) (rss, hwm int64, err error) {
	if p.pid > 0 {
		b, err := os.ReadFile(p.source())
		if err != nil {
			return 0, 0, fmt.Errorf("server memory: %w", err)
		}
		return parseProcStatus(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("server memory: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, fmt.Errorf("server memory: read %s: %w", p.metricsURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("server memory: %s answered %d", p.metricsURL, resp.StatusCode)
	}
	rss, err = parseMetricsRSS(b)
	return rss, 0, err
}

// parseProcStatus reads VmRSS and VmHWM (in kB) of /proc/<pid>/status.
func parseProcStatus(b []byte) (rss, hwm int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("server memory: %s: %w", name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("server memory: no VmRSS line (is the pid a running process?)")
	}
	return rss, hwm, sc.Err()
}

// parseMetricsRSS finds process_resident_memory_bytes in a Prometheus
// text exposition.
func parseMetricsRSS(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("server memory: process_resident_memory_bytes: %w", err)
		}
		return int64(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("server memory: /metrics has no process_resident_memory_bytes (give the server's -pid instead)")
}

// memSampler keeps the highest resident set seen while it runs.
type memSampler struct {
	mu   sync.Mutex
	peak int64
	err  error
	stop chan struct{}
	done chan struct{}
}

func (p *memProbe) sample(ctx context.Context, every time.Duration) *memSampler {
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			rss, _, err := p.read(ctx)
			s.mu.Lock()
			if err != nil && s.err == nil {
				s.err = err
			}
			s.peak = max(s.peak, rss)
			s.mu.Unlock()
			select {
			case <-t.C:
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

// end stops the sampler and returns the peak and the first read error.
func (s *memSampler) end() (int64, error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.err
}
