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
	wg        sync.WaitGroup
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
	f := &Forwarder{c: c, gw: gw}
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

// Close stops listening and ends the forwarded connections.
func (f *Forwarder) Close() {
	for _, ln := range f.listeners {
		ln.Close()
	}
	f.wg.Wait()
}

func (f *Forwarder) post(fn func()) { f.c.clk.Post(0, clock.Func(fn)) }

func (f *Forwarder) accept(ln net.Listener, b *Board) {
	defer f.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return // closed
		}
		f.post(func() { f.bridge(conn, b) })
	}
}

// bridge runs on the clock's goroutine: it dials the board from the gateway
// and pumps bytes both ways. Host sockets are read and written by goroutines
// of their own; they reach the simulation only through post.
func (f *Forwarder) bridge(conn net.Conn, b *Board) {
	toHost := make(chan []byte, 64)
	f.gw.DialTCP(b.ControlAddr(), func(tc *netsim.TCPConn, err error) {
		if err != nil {
			conn.Close()
			return
		}
		tc.OnData = func(p []byte) { toHost <- append([]byte(nil), p...) }
		tc.OnClose = func() { close(toHost) }
		go func() { // board → host; keeps draining after a failed write so the loop never blocks on it
			ok := true
			for p := range toHost {
				if ok {
					if _, err := conn.Write(p); err != nil {
						ok = false
						conn.Close()
					}
				}
			}
			conn.Close()
		}()
		go func() { // host → board
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
