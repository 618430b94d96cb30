package sim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

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
	done      chan struct{} // closed by Close: pumps stop

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
func (c *Cluster) Forward(base netip.AddrPort) (*Forwarder, error) {
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

func (f *Forwarder) accept(ln net.Listener, b *Board) {
	defer f.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return // closed
		}
		if f.track(conn, 0) {
			f.post(func() { f.bridge(conn, b) })
		}
	}
}

// bridge runs on the clock's goroutine: it dials the board from the gateway
// and pumps bytes both ways. Host sockets are read and written by goroutines
// of their own; they reach the simulation only through post, and never
// block it: once the forwarder closes, data for the host is dropped.
func (f *Forwarder) bridge(conn net.Conn, b *Board) {
	toHost := make(chan []byte, 64)
	f.gw.DialTCP(b.ControlAddr(), func(tc *netsim.TCPConn, err error) {
		if err != nil || !f.track(conn, 2) {
			f.untrack(conn)
			return
		}
		tc.OnData = func(p []byte) {
			select {
			case toHost <- append([]byte(nil), p...):
			case <-f.done:
			}
		}
		tc.OnClose = func() { close(toHost) }
		go func() { // board → host; keeps draining after a failed write so the loop never blocks on it
			defer f.wg.Done()
			defer f.untrack(conn)
			ok := true
			for {
				select {
				case p, open := <-toHost:
					if !open {
						return
					}
					if ok {
						if _, err := conn.Write(p); err != nil {
							ok = false
							conn.Close()
						}
					}
				case <-f.done:
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
					f.post(func() { tc.Write(p) })
				}
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						f.post(tc.Close)
					}
					return
				}
			}
		}()
	})
}
