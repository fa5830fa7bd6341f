package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// viewerPoller reads every viewer's socket on a few epoll loops, one per P,
// instead of on a goroutine per viewer. It exists to leave the machine's
// cores to the server under test: the generator shares them, and every
// microsecond it spends receiving a frame is taken from the server's fan-out
// and shows up as latency.
//
// With a goroutine per viewer, each frame costs the Go scheduler a netpoll
// round: the poller marks the goroutine ready, a P is woken for it (a futex
// wake, often an idle thread spinning up on the other core), the goroutine
// reads and parks again. An epoll loop instead takes a batch of ready
// sockets from one epoll_wait and reads each once, on a thread that stays
// busy while frames keep coming. See docs/benchmarks.md, "A cheaper
// generator", for what it saved.
//
// Sockets are registered edge-triggered and read until a read comes back
// short of the buffer, which holds the largest frame: a short read emptied
// the socket, and whatever arrives after it is a new edge. Level-triggered,
// each socket returned was polled again by the next epoll_wait only to find
// it empty: at 19,000 viewers × 10 messages/s (perf record -a, 8 s),
// tcp_poll and sock_poll were 15 % of the generator's samples.
type viewerPoller struct {
	b       *msgBench
	loops   []*pollLoop
	viewers []polledViewer // by viewer index
	stop    atomic.Bool
	running sync.WaitGroup
}

// polledViewer is one viewer's socket, owned by its loop once registered.
type polledViewer struct {
	fd    int    // -1 once ended
	carry []byte // the start of a frame the last read did not complete
}

// Write sends the viewer's few frames (pongs, the close echo) straight to
// the socket. The socket is non-blocking and these frames are a few bytes on
// a connection the viewer otherwise never writes to, so a short write does
// not happen in practice; if it did, the server would see a broken frame and
// close the connection, which the report would show.
func (pv *polledViewer) Write(p []byte) (int, error) {
	return syscall.Write(pv.fd, p)
}

type pollLoop struct {
	p      *viewerPoller
	epfd   int      // the loop's epoll set; ep owns it
	ep     *os.File // epfd on the runtime's poller, to park the loop on
	events []syscall.EpollEvent
	buf    []byte // one read: a carried partial frame plus what arrived
	split  frameSplitter
	// mu orders registration (add, on a handshake goroutine) before the
	// loop serves the viewer; the loop holds it per batch, not per socket.
	mu sync.Mutex
}

// A loop waits for its sockets by parking on the Go runtime's own poller,
// where its epoll set is registered like any descriptor (an epoll set is
// readable while it has ready sockets): it asks its set for ready sockets
// without blocking, and when there are none it gives up its P until the
// set becomes readable. It never blocks in epoll_wait.
//
// Why. A loop that blocked in epoll_wait held its P inside a system call,
// and with every P in one the runtime's sysmon took each P back as soon as
// it looked (retake) and, having found work, kept polling every 20 µs.
// Measured at 1,000 viewers × 10 messages/s, where a loop waits about
// 90 ms between messages (perf record of the generator, 8 s): sysmon's
// nanosleeps were 17–19 % of the generator's CPU samples with 100 ms
// waits; 5 ms waits with a runtime.Gosched after each brought that down on
// one host and left it at 8–15 % on another (the context switches behind
// them cost more there). Parked on the poller, a waiting loop is an idle P
// like any other goroutine's, and sysmon sleeps. See docs/benchmarks.md,
// "A cheaper generator" and "The generator, again".

func newViewerPoller(b *msgBench) (*viewerPoller, error) {
	p := &viewerPoller{b: b, viewers: make([]polledViewer, b.cfg.viewers)}
	for i := range p.viewers {
		p.viewers[i].fd = -1
	}
	for range min(runtime.GOMAXPROCS(0), b.cfg.viewers) {
		l, err := newPollLoop(p)
		if err != nil {
			p.close()
			return nil, err
		}
		p.loops = append(p.loops, l)
	}
	for _, l := range p.loops {
		p.running.Add(1)
		go l.run()
	}
	return p, nil
}

func newPollLoop(p *viewerPoller) (*pollLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile puts it on the runtime's poller.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("epoll set non-blocking: %w", err)
	}
	return &pollLoop{
		p: p, epfd: epfd, ep: os.NewFile(uintptr(epfd), "epoll"),
		events: make([]syscall.EpollEvent, 256),
		buf:    make([]byte, ws.MaxHeaderSize+maxFrameSize),
	}, nil
}

// add hands viewer v's connection to a loop: its descriptor is duplicated
// and the net.Conn closed, which takes the socket out of the Go runtime's
// own poller (it would otherwise be woken for every frame too). Frames the
// handshake's reader already holds are handled first.
func (p *viewerPoller) add(v int, conn net.Conn, br *bufio.Reader) {
	fd, err := dupSocket(conn)
	if err != nil {
		conn.Close()
		p.b.recordEnd(v, endState{err: err})
		return
	}
	conn.Close()
	pv := &p.viewers[v]
	pv.fd = fd
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		var s frameSplitter
		if !p.consume(v, &s, early, time.Now().UnixNano()) {
			return
		}
	}
	l := p.loops[v%len(p.loops)]
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollET, Fd: int32(fd), Pad: int32(v)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.end(v, endState{err: fmt.Errorf("epoll_ctl: %w", err)})
	}
}

// epollET is EPOLLET as the uint32 that EpollEvent.Events holds (package
// syscall declares it negative).
const epollET = 1 << 31

// dupSocket returns a non-blocking, close-on-exec duplicate of conn's
// descriptor (the flag lives on the shared file description).
func dupSocket(conn net.Conn) (int, error) {
	if sc, ok := conn.(*stampConn); ok {
		conn = sc.Conn
	}
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return -1, errors.New("not a TCP connection")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := raw.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			err = errno
			return
		}
		fd = int(r)
	})
	if cerr != nil {
		return -1, cerr
	}
	return fd, err
}

// end closes viewer v's socket and records how the connection ended. Only
// the viewer's loop (or add, before the loop knows it) calls it.
func (p *viewerPoller) end(v int, st endState) {
	pv := &p.viewers[v]
	syscall.Close(pv.fd) // also takes it out of the epoll set
	pv.fd, pv.carry = -1, nil
	p.b.recordEnd(v, st)
}

// close stops the loops and closes the sockets still open, without
// recording an end for them (the run is over). Closing twice is harmless.
func (p *viewerPoller) close() {
	p.stop.Store(true)
	for _, l := range p.loops {
		l.ep.Close() // wakes the loop if it is parked
	}
	p.running.Wait()
	for i := range p.viewers {
		if pv := &p.viewers[i]; pv.fd >= 0 {
			syscall.Close(pv.fd)
			pv.fd = -1
		}
	}
}

func (l *pollLoop) run() {
	defer l.p.running.Done()
	raw, err := l.ep.SyscallConn()
	if err != nil {
		l.p.b.logf("epoll set: %v; this loop's viewers stop reading", err)
		return
	}
	var waitErr error
	// take serves the sockets ready now; false (none are) parks the loop
	// until the set is readable.
	take := func(epfd uintptr) bool {
		n, err := syscall.EpollWait(int(epfd), l.events, 0)
		switch {
		case err == syscall.EINTR || err == nil && n == 0:
			return false
		case err != nil:
			waitErr = err
			return true
		}
		l.mu.Lock()
		for _, ev := range l.events[:n] {
			l.serve(int(ev.Pad))
		}
		l.mu.Unlock()
		return true
	}
	for !l.p.stop.Load() {
		err := raw.Read(take)
		if err == nil {
			err = waitErr
		}
		if err != nil {
			if !l.p.stop.Load() {
				l.p.b.logf("epoll_wait: %v; this loop's viewers stop reading", err)
			}
			return
		}
	}
}

// serve reads viewer v's socket once and handles the frames it completed.
func (l *pollLoop) serve(v int) {
	pv := &l.p.viewers[v]
	if pv.fd < 0 {
		return // ended earlier in this batch
	}
	for {
		k := copy(l.buf, pv.carry)
		n, err := syscall.Read(pv.fd, l.buf[k:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return
		case err != nil:
			l.p.end(v, endState{err: err})
			return
		case n == 0:
			l.p.end(v, endState{err: io.EOF})
			return
		}
		// Receipt is when the read returned, for every frame it completed
		// (as stampConn does for the goroutine readers).
		if !l.p.consume(v, &l.split, l.buf[:k+n], time.Now().UnixNano()) || k+n < len(l.buf) {
			return
		}
	}
}

// consume handles the frames complete in buf, which viewer v received at
// now (UnixNano), and keeps the rest as its carry; false means the
// connection ended. buf must not be the viewer's carry itself.
func (p *viewerPoller) consume(v int, s *frameSplitter, buf []byte, now int64) bool {
	pv := &p.viewers[v]
	used, st, done := s.split(buf, frameWriter{w: pv}, func(t []byte) { p.b.viewerText(v, now, t) })
	if done {
		p.end(v, st)
		return false
	}
	pv.carry = append(pv.carry[:0], buf[used:]...)
	return true
}

// defaultReaders is the cheapest way viewers can read on this system.
const defaultReaders = "epoll"
