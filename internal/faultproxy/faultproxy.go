// Package faultproxy is a TCP proxy that tests put between a node and a
// dependency (PostgreSQL, Redis) to inject the faults that networks produce:
// a connection that goes silent without a FIN (Freeze), connections that are
// reset and refused (Cut), and recovery (Heal). Only tests import it; the
// shared services of the machine are never stopped, only hidden behind a
// proxy.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// State is what the proxy does with traffic.
type State int

const (
	// Open forwards bytes both ways.
	Open State = iota
	// Frozen accepts connections and keeps every connection open, but
	// forwards nothing in either direction: a black hole, as a peer behind
	// a failed switch or a dropped route looks.
	Frozen
	// Cut resets every connection and refuses new ones: the dependency is
	// down.
	Cut
)

// Proxy forwards connections from its listener to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	state   State
	changed chan struct{} // closed and replaced on every state change
	conns   map[*pair]struct{}
	closed  bool
	wg      sync.WaitGroup
}

type pair struct {
	client, server net.Conn
	open           sync.WaitGroup // one per direction still forwarding
	// frozen holds this connection's traffic whatever the proxy's state
	// (FreezeExisting); guarded by Proxy.mu.
	frozen bool
}

// New listens on a free loopback port and forwards to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, changed: make(chan struct{}), conns: make(map[*pair]struct{})}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Start is New for a test: it fails the test if the proxy cannot listen and
// closes the proxy when the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// InFront starts a proxy in front of the host of a dependency's URL
// (postgres://, redis://, ...) and returns it with the URL to use instead:
// the same URL with the proxy's address as its host.
func InFront(t testing.TB, rawURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		t.Fatalf("faultproxy: %q is not a URL with a host: %v", rawURL, err)
	}
	p := Start(t, u.Host)
	via := *u
	via.Host = p.Addr()
	return p, via.String()
}

// Addr is the address clients dial instead of the target ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops forwarding without closing anything (see Frozen).
func (p *Proxy) Freeze() { p.set(Frozen) }

// FreezeExisting black-holes the connections open now and keeps forwarding
// new ones: a client that notices the silence and dials again gets through,
// as it would after a network path failed and another one took over. Heal
// releases the frozen connections too.
func (p *Proxy) FreezeExisting() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for c := range p.conns {
		c.frozen = true
	}
	p.broadcast()
}

// Cut resets every open connection and refuses new ones until Heal.
func (p *Proxy) Cut() {
	p.set(Cut)
	p.mu.Lock()
	conns := p.conns
	p.conns = make(map[*pair]struct{})
	p.mu.Unlock()
	for c := range conns {
		c.close()
	}
}

// Heal forwards again. Connections frozen meanwhile resume where they
// stopped (no byte was lost, only delayed); connections cut stay closed.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for c := range p.conns {
		c.frozen = false
	}
	p.state = Open
	p.broadcast()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	close(p.changed)
	p.mu.Unlock()
	err := p.ln.Close()
	for c := range conns {
		c.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) set(s State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.state == s {
		return
	}
	p.state = s
	p.broadcast()
}

// broadcast wakes every connection waiting for a change; p.mu is held.
func (p *Proxy) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// wait returns the current state and a channel closed when it changes.
func (p *Proxy) wait() (State, chan struct{}, bool) {
	return p.waitPair(nil)
}

// waitPair is wait for one connection's traffic: a connection frozen by
// FreezeExisting sees Frozen while the proxy is open.
func (p *Proxy) waitPair(pr *pair) (State, chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	state := p.state
	if pr != nil && pr.frozen && state == Open {
		state = Frozen
	}
	return state, p.changed, p.closed
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		state, _, closed := p.wait()
		if closed || state == Cut {
			reset(c)
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			reset(c)
			continue
		}
		pr := &pair{client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pr.close()
			continue
		}
		p.conns[pr] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(3)
		pr.open.Add(2)
		go p.pipe(pr, c, s)
		go p.pipe(pr, s, c)
		go func() {
			defer p.wg.Done()
			pr.open.Wait()
			pr.close()
			p.mu.Lock()
			delete(p.conns, pr)
			p.mu.Unlock()
		}()
	}
}

// pipe copies src to dst, holding every chunk while the proxy is frozen.
// A clean end of src half-closes dst, as the peer did, so protocol shutdowns
// look the same as without the proxy; anything else ends both directions.
func (p *Proxy) pipe(pr *pair, src, dst net.Conn) {
	defer p.wg.Done()
	defer pr.open.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.passable(pr) {
				pr.close()
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				pr.close()
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite()
				return
			}
			pr.close()
			return
		}
	}
}

// passable blocks while the proxy or pr is frozen and reports whether the
// bytes may go through (false once the proxy is cut or closed).
func (p *Proxy) passable(pr *pair) bool {
	for {
		state, changed, closed := p.waitPair(pr)
		switch {
		case closed || state == Cut:
			return false
		case state == Open:
			return true
		}
		<-changed
	}
}

func (pr *pair) close() {
	reset(pr.client)
	reset(pr.server)
}

// reset closes c with an RST rather than a FIN where it can, as a crashed
// peer or a restarted proxy does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
