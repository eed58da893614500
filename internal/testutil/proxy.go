package testutil

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy a test owns between a pool and the PostgreSQL server.
// Cut drops every connection and refuses new ones, as a stopped or
// unreachable database would, without touching the server other tests use;
// Restore lets connections through again.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on 127.0.0.1 and forwards to target (host:port). It is
// closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: proxy listen: %v", err)
	}
	p := &Proxy{t: t, target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		if err := ln.Close(); err != nil {
			t.Logf("testutil: proxy close: %v", err)
		}
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns dbURL (a postgres:// URL) pointed at the proxy.
func (p *Proxy) URL(dbURL string) string {
	p.t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		p.t.Fatalf("testutil: proxy url: %v", err)
	}
	q := u.Query()
	q.Del("host") // a socket host parameter would bypass the proxy
	u.RawQuery = q.Encode()
	u.Host = p.Addr()
	return u.String()
}

// Cut closes every proxied connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		closeQuietly(p.t, c)
	}
	clear(p.conns)
}

// Restore lets new connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.t.Logf("testutil: proxy accept: %v", err)
			}
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			closeQuietly(p.t, c)
			continue
		}
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.t.Logf("testutil: proxy dial %s: %v", p.target, err)
			closeQuietly(p.t, c)
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			closeQuietly(p.t, c)
			closeQuietly(p.t, up)
			continue
		}
		p.conns[c] = struct{}{}
		p.conns[up] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	// Copy ends when either side closes; that is the point of the proxy,
	// so its error is not a failure.
	if _, err := io.Copy(dst, src); err != nil && !errors.Is(err, net.ErrClosed) {
		p.t.Logf("testutil: proxy copy ended: %v", err)
	}
	closeQuietly(p.t, dst)
	closeQuietly(p.t, src)
}

// closeQuietly closes c; closing a connection already closed by the other
// pipe direction or by Cut is expected.
func closeQuietly(t testing.TB, c net.Conn) {
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("testutil: proxy close conn: %v", err)
	}
}
