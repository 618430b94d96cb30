package firmware

import (
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// SlotConn is one TCP connection of a stack with a fixed set of them, as
// lneto has on a Pico W: an accepting slot's waits for the next peer on its
// port (Slot.Port) while idle, a dialling slot's carries one dial, and no
// call blocks. A port may have several accepting slots: a stack that keeps
// one listener per port, as lneto does, hands its connections out to them
// (the Pico W adapter offers each waiting slot's connection to the port's
// tcp.Listener). An adapter implements it in a few lines over its stack's
// types.
type SlotConn interface {
	// Established: a controller connected (the handshake is done), whether
	// or not either side has closed since.
	Established() bool
	// PeerDone: nothing more will arrive (the controller closed its side,
	// or the connection broke).
	PeerDone() bool
	// Closed: the connection is over, or never began; it may listen again.
	// A connection waiting for a peer (since Listen) is not closed.
	Closed() bool
	// Buffered is how many received bytes wait to be read.
	Buffered() int
	// Read takes up to len(p) received bytes.
	Read(p []byte) int
	// Write queues for sending as much of p as fits now.
	Write(p []byte) int
	// Close ends the connection after what was written.
	Close()
	// Abort drops it at once.
	Abort()
	// Listen waits for the next peer on the slot's port, without blocking:
	// the next connection to the port may arrive through this one. An
	// error (the port cannot be listened on) makes Poll try again on its
	// next round, and return it each time.
	Listen() error
	// RemoteAddr is the peer's IPv4 address (4 bytes), or nil.
	RemoteAddr() []byte
	// HalfOpen: a peer's SYN arrived and the handshake is not done
	// (SYN-RECEIVED).
	HalfOpen() bool
}

// HalfOpenLimit is how long an accepting slot may stay half-open before
// the program hears of an unanswered connection attempt
// (Program.Unanswered): a handshake takes one round trip, and a
// controller's SYN retransmits (1 s, then 3 s) meet the same connection, so
// one still not done after 3 s had its SYN-ACK lost, or never sent
// (soypat/cyw43439#82). The slot is aborted and listens again, and two such
// within UnansweredWindow make the program open the port's listeners anew.
// A SYN the stack never saw at all does not show here.
const HalfOpenLimit = 3 * time.Second

// MaxBacklog bounds what a control connection may owe its controller beyond
// the stack's own buffer: a controller that stops reading is cut off rather
// than stopping the board (a write that waited for it would stop the whole
// loop: discovery, the fail-safe, every other controller).
const MaxBacklog = 16 << 10

// ErrCutOff is what Board.Write returns when a connection already owes its
// peer MaxBacklog bytes: the adapter has dropped it (and will not report it
// Closed), and the program forgets it. Every adapter bounds its connections
// this way, so a client that does not read costs the board at most
// MaxBacklog and never stalls anyone else.
var ErrCutOff error = errCutOff

// Linger is how long a closed connection may take to finish closing (our
// FIN acknowledged) before its slot is taken back for the next controller:
// a controller that vanished must not hold the port.
const Linger = 10 * time.Second

// Slot turns what an adapter sees of one SlotConn into the program's
// Opened, Received and Closed, and carries out the program's writes and
// closes without waiting: what the stack cannot take yet waits in a bounded
// backlog, and a close waits until the backlog is out.
type Slot struct {
	ID   control.ConnID
	Conn SlotConn
	Port uint16 // the port it listens on (an accepting slot)

	outgoing bool // a connection the program dialled: no listening after it
	free     bool // an outgoing slot that is over

	open      bool          // the program knows the connection
	closing   bool          // the program closed it: close once the backlog is out
	finishing bool          // ended, waiting for the close to finish (or Linger)
	closedAt  time.Duration // when it ended
	half      bool          // half-open (SlotConn.HalfOpen) since halfAt
	halfAt    time.Duration
	backlog   []byte
	// CutOff counts connections aborted for an overflowing backlog.
	CutOff uint64
}

// Poll moves the connection along: a new controller is Opened and its data
// Received (read through buf), the backlog goes out, a connection the
// controller or the program ended is closed and Closed, and a finished one
// listens again. busy reports whether anything happened.
func (s *Slot) Poll(now time.Duration, p *Program, buf []byte) (busy bool, err error) {
	c := s.Conn
	if s.free {
		return false, nil
	}
	switch {
	case !s.open && !s.finishing && c.Established() && !c.Closed():
		s.open, s.backlog = true, s.backlog[:0]
		if s.outgoing {
			p.Connected(now, s.ID, nil)
		} else {
			p.Opened(now, s.ID, s.Port)
		}
		busy = true
	case s.outgoing && !s.open && !s.finishing && c.Closed(): // refused, or never answered
		c.Abort()
		s.free = true
		p.Connected(now, s.ID, errRefused)
		return true, nil
	case s.outgoing || s.open || s.finishing || !c.HalfOpen():
		s.half = false
	case !s.half:
		s.half, s.halfAt = true, now
	case now-s.halfAt >= HalfOpenLimit:
		s.half = false
		c.Abort() // it listens again below
		p.Unanswered(now, s.Port)
		busy = true
	}
	for s.open && c.Buffered() > 0 {
		n := c.Read(buf)
		if n == 0 {
			break
		}
		busy = true
		p.Received(now, s.ID, buf[:n])
	}
	if s.open && len(s.backlog) > 0 && !c.Closed() {
		n := c.Write(s.backlog)
		s.backlog = s.backlog[:copy(s.backlog, s.backlog[n:])]
		busy = busy || n > 0
	}
	switch {
	case s.open && c.Closed(): // reset by the peer, or aborted for its backlog
		s.end(now, p)
		busy = true
	case s.open && len(s.backlog) == 0 && (s.closing || (c.PeerDone() && c.Buffered() == 0)):
		c.Close() // after what was written: a half-closed controller gets its replies
		s.end(now, p)
		busy = true
	}
	var again bool
	switch {
	case s.open:
	case s.finishing:
		again = c.Closed() || now-s.closedAt >= Linger
	default: // never listened yet, or the listen broke
		again = c.Closed()
	}
	if again {
		c.Abort()
		s.finishing = false
		if s.outgoing {
			s.free = true
			return true, nil
		}
		if err = c.Listen(); err != nil {
			return busy, err
		}
		busy = true
	}
	return busy, nil
}

// Dialed makes s the outgoing connection c, which the adapter has just
// opened on s.Conn: Poll reports the outcome to Program.Connected.
func (s *Slot) Dialed(c control.ConnID) {
	*s = Slot{ID: c, Conn: s.Conn, outgoing: true, backlog: s.backlog[:0], CutOff: s.CutOff}
}

// Free reports whether s is an outgoing slot that is over: the adapter may
// dial or listen with it again.
func (s *Slot) Free() bool { return s.free }

// Listening makes s an accepting slot on port, which the adapter has just
// set listening.
func (s *Slot) Listening(id control.ConnID, port uint16) {
	*s = Slot{ID: id, Conn: s.Conn, Port: port, backlog: s.backlog[:0], CutOff: s.CutOff}
}

func (s *Slot) end(now time.Duration, p *Program) {
	s.open, s.closing, s.backlog = false, false, s.backlog[:0]
	s.finishing, s.closedAt = true, now
	p.Closed(now, s.ID)
}

// Write is the program's Board.Write for this connection.
func (s *Slot) Write(data []byte) error {
	if !s.open || s.closing {
		return errNotOpen
	}
	if len(s.backlog) == 0 {
		data = data[s.Conn.Write(data):]
	}
	if len(s.backlog)+len(data) > MaxBacklog {
		s.CutOff++
		s.Conn.Abort() // the next Poll finds it closed and tells the program
		s.backlog = s.backlog[:0]
		return errCutOff
	}
	s.backlog = append(s.backlog, data...)
	return nil
}

// Peer is the program's Board.Peer for this connection.
func (s *Slot) Peer() node.Addr {
	var a node.Addr
	if r := s.Conn.RemoteAddr(); len(r) == 4 {
		copy(a[:], r)
	}
	return a
}

// Close is the program's Board.Close for this connection.
func (s *Slot) Close() error {
	if s.open {
		s.closing = true
	}
	return nil
}

type slotError string

func (e slotError) Error() string { return string(e) }

const (
	errNotOpen = slotError("control connection is not open")
	errCutOff  = slotError("control connection cut off: its controller reads nothing")
	errRefused = slotError("connection refused or not answered")
)
