package sim

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
)

// Forwarder exposes every board's control port on the host: board i (from 0)
// on the base port + i. Each connection is carried to the board by a gateway
// host on the simulated LAN, so the LAN's impairments apply on the way, and
// any TCP client on the host drives a virtual board as it would a real one.
// The cluster must run in paced time (Clock().RunPaced) while it forwards.
type Forwarder struct {
	c         *Cluster
	gw        *netsim.Host
	listeners []net.Listener
	Mappings  []Mapping
	// Notes, if set, hears of connections the forwarder closed on its own
	// (called on the clock's goroutine).
	Notes func(string)
	done  chan struct{} // closed by Close: pumps stop

	mu     sync.Mutex // guards below; wg.Add happens under it, before closed
	closed bool
	conns  map[net.Conn]bool // host connections open
	wg     sync.WaitGroup    // acceptors and pumps
}

// Mapping is one forwarded port.
type Mapping struct {
	Board string
	To    netip.AddrPort // the board's control server on the LAN
	From  string         // where host programs connect
}

// Forward starts forwarding from base's address, ports base.Port() + i.
// Call it before the clock runs.
func (c *Cluster) Forward(base netip.AddrPort) (*Forwarder, error) { return c.ForwardTLS(base, nil) }

// ForwardTLS forwards as Forward does, serving TLS with tlsConfig on the
// host's side when it is not nil (piconetcontrol's client speaks TLS by
// default, as the real server serves it); the boards get plain TCP.
func (c *Cluster) ForwardTLS(base netip.AddrPort, tlsConfig *tls.Config) (*Forwarder, error) {
	gw, err := c.lan.AddHost(netsim.HostConfig{Name: "forward"})
	if err != nil {
		return nil, err
	}
	f := &Forwarder{c: c, gw: gw, done: make(chan struct{}), conns: map[net.Conn]bool{}}
	for i, b := range c.boards {
		from := netip.AddrPortFrom(base.Addr(), base.Port()+uint16(i))
		if base.Port() == 0 {
			from = netip.AddrPortFrom(base.Addr(), 0) // any free port, for tests
		}
		ln, err := net.Listen("tcp", from.String())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("forward %s: %w", b.name, err)
		}
		if tlsConfig != nil {
			ln = tls.NewListener(ln, tlsConfig)
		}
		f.listeners = append(f.listeners, ln)
		f.Mappings = append(f.Mappings, Mapping{Board: b.name, To: b.ControlAddr(), From: ln.Addr().String()})
		f.wg.Add(1)
		go f.accept(ln, b)
	}
	return f, nil
}

// Close stops listening, ends the forwarded connections and waits for the
// goroutines that served them.
func (f *Forwarder) Close() {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.done)
		for _, ln := range f.listeners {
			ln.Close()
		}
		for conn := range f.conns {
			conn.Close()
		}
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *Forwarder) post(fn func()) { f.c.clk.Post(0, clock.Func(fn)) }

// track adds a host connection and n goroutines that serve it, unless the
// forwarder is closed (then the connection is closed at once).
func (f *Forwarder) track(conn net.Conn, n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		conn.Close()
		return false
	}
	f.conns[conn] = true
	f.wg.Add(n)
	return true
}

func (f *Forwarder) untrack(conn net.Conn) {
	conn.Close()
	f.mu.Lock()
	delete(f.conns, conn)
	f.mu.Unlock()
}

// TLSHandshakeTimeout bounds a TLS client's handshake on a forwarded port
// (ForwardTLS): one that has not finished by then is closed.
const TLSHandshakeTimeout = 5 * time.Second

// MaxForwarded bounds the host connections one forwarded port carries at
// once: a board serves four, so more only cost memory. Beyond it a new
// connection is closed at once.
const MaxForwarded = 16

func (f *Forwarder) accept(ln net.Listener, b *Board) {
	defer f.wg.Done()
	var open atomic.Int32 // this port's connections
	pause := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-f.done:
				return // closed
			default:
			}
			// Out of file descriptors (a connect flood), say: wait and
			// accept again, as net/http does; returning would leave the
			// port listening with nobody to accept, for good.
			select {
			case <-time.After(pause):
			case <-f.done:
				return
			}
			pause = min(2*pause, time.Second)
			continue
		}
		pause = 5 * time.Millisecond
		if open.Load() >= MaxForwarded {
			conn.Close()
			continue
		}
		open.Add(1)
		if !f.track(conn, 0) {
			open.Add(-1)
			continue
		}
		release := func() { open.Add(-1) }
		if tc, ok := conn.(*tls.Conn); ok {
			// The handshake first, bounded, on a goroutine of its own: a
			// client that connects and says nothing must not hold the
			// port (40 silent ones locked TLS clients out for good) nor
			// reach the board.
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				tc.SetDeadline(time.Now().Add(TLSHandshakeTimeout))
				err := tc.Handshake()
				tc.SetDeadline(time.Time{})
				if err != nil {
					f.untrack(conn)
					release()
					return
				}
				f.post(func() { f.bridge(conn, b, release) })
			}()
			continue
		}
		f.post(func() { f.bridge(conn, b, release) })
	}
}

// MaxHostBacklog bounds what a forwarded connection may hold for a host
// client that does not read: beyond it the connection is closed with a
// note. The clock never waits for a host socket.
const MaxHostBacklog = 256 << 10

// bridge runs on the clock's goroutine: it dials the board from the gateway
// and pumps bytes both ways. Host sockets are read and written by goroutines
// of their own; they reach the simulation only through post, and never
// block it. Board → host, data waits in a queue bounded by MaxHostBacklog;
// host → board, the reader waits until the board has taken what it sent
// (so a board that reads slowly slows the host client, as TCP does).
func (f *Forwarder) bridge(conn net.Conn, b *Board, done func()) {
	f.gw.DialTCP(b.ControlAddr(), func(tc *netsim.TCPConn, err error) {
		if err != nil || !f.track(conn, 2) {
			f.untrack(conn)
			done()
			return
		}
		out := &hostQueue{wake: make(chan struct{}, 1)}
		tc.OnData = func(p []byte) {
			if !out.put(p) {
				f.note(fmt.Sprintf("closed %s → %s: the host client read nothing while %d KiB waited", conn.RemoteAddr(), b.name, MaxHostBacklog>>10))
				tc.Abort()
				conn.Close()
			}
		}
		credit := make(chan struct{}, 1)
		give := func() {
			select {
			case credit <- struct{}{}:
			default:
			}
		}
		// release gives the reader its next turn once the board has taken
		// enough of what it sent; until then the stack calls it back.
		release := func() {
			if tc.Buffered() < hostChunk {
				tc.OnWritable = nil
				give()
			}
		}
		tc.OnClose = func() {
			out.end()
			give() // a reader waiting for the board to take its data must not wait for good
		}
		go func() { // board → host
			defer f.wg.Done()
			defer done()
			defer f.untrack(conn)
			for {
				p, open := out.take(f.done)
				if !open {
					if cw, ok := conn.(interface{ CloseWrite() error }); ok {
						cw.CloseWrite()
					}
					return
				}
				if _, err := conn.Write(p); err != nil {
					f.post(tc.Abort)
					return
				}
			}
		}()
		go func() { // host → board
			defer f.wg.Done()
			buf := make([]byte, 4096)
			for {
				n, err := conn.Read(buf)
				if n > 0 {
					p := append([]byte(nil), buf[:n]...)
					f.post(func() {
						tc.Write(p)
						tc.OnWritable = release
						release()
					})
					select { // wait until the board has taken it
					case <-credit:
					case <-f.done:
						return
					}
				}
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						f.post(tc.CloseWrite) // a half-close: the board still answers
					}
					return
				}
			}
		}()
	})
}

// hostChunk is how much the gateway lets a host client have in flight to a
// board before it stops reading the host socket.
const hostChunk = 64 << 10

// note reports something the forwarder did on its own (a connection it
// closed), on Notes if set.
func (f *Forwarder) note(msg string) {
	if f.Notes != nil {
		f.Notes(msg)
	}
}

// hostQueue holds data from a board until the host client takes it. put
// runs on the clock's goroutine and never blocks.
type hostQueue struct {
	mu    sync.Mutex
	q     [][]byte
	size  int
	ended bool
	wake  chan struct{}
}

func (h *hostQueue) put(p []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.size+len(p) > MaxHostBacklog {
		return false
	}
	h.q = append(h.q, append([]byte(nil), p...))
	h.size += len(p)
	h.signal()
	return true
}

func (h *hostQueue) end() {
	h.mu.Lock()
	h.ended = true
	h.signal()
	h.mu.Unlock()
}

func (h *hostQueue) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// take waits for data; open is false once the board side ended and all was
// taken, or done closed.
func (h *hostQueue) take(done <-chan struct{}) (p []byte, open bool) {
	for {
		h.mu.Lock()
		if len(h.q) > 0 {
			p, h.q = h.q[0], h.q[1:]
			h.size -= len(p)
			h.mu.Unlock()
			return p, true
		}
		ended := h.ended
		h.mu.Unlock()
		if ended {
			return nil, false
		}
		select {
		case <-h.wake:
		case <-done:
			return nil, false
		}
	}
}
