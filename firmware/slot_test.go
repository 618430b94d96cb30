package firmware_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/control"
)

// tcpSlot is a SlotConn as lneto's tcp.Conn behaves: a fixed send buffer
// that the network drains only when the test says so, a receive buffer the
// test fills, and the states a connection goes through.
type tcpSlot struct {
	state    string // closed, listen, established, close_wait (the peer sent FIN), last_ack, fin_wait (we closed)
	in       []byte // received, unread
	out      []byte // written, unsent
	sent     []byte // what the controller got
	room     int    // send buffer size
	listens  int
	aborts   int
	failNext bool
}

func (c *tcpSlot) Established() bool {
	return c.state != "closed" && c.state != "listen" && c.state != "syn_sent" && c.state != "syn_rcvd"
}
func (c *tcpSlot) PeerDone() bool {
	return c.state == "close_wait" || c.state == "last_ack" || c.state == "closed"
}
func (c *tcpSlot) Closed() bool  { return c.state == "closed" }
func (c *tcpSlot) Buffered() int { return len(c.in) }
func (c *tcpSlot) Read(p []byte) int {
	n := copy(p, c.in)
	c.in = c.in[n:]
	return n
}
func (c *tcpSlot) Write(p []byte) int {
	if c.state != "established" && c.state != "close_wait" {
		return 0
	}
	n := min(len(p), c.room-len(c.out))
	c.out = append(c.out, p[:n]...)
	return n
}
func (c *tcpSlot) Close() {
	switch c.state {
	case "established":
		c.state = "fin_wait"
	case "close_wait":
		c.state = "last_ack"
	}
}
func (c *tcpSlot) Abort() { c.aborts++; c.state, c.in, c.out = "closed", nil, nil }
func (c *tcpSlot) Listen() error {
	c.listens++
	if c.failNext { // as lneto refusing a port it cannot register
		c.failNext = false
		return errors.New("protocol already registered")
	}
	c.state = "listen"
	return nil
}

func (c *tcpSlot) RemoteAddr() []byte { return []byte{192, 168, 1, 50} }
func (c *tcpSlot) HalfOpen() bool     { return c.state == "syn_rcvd" }

// drain lets the network carry what was written.
func (c *tcpSlot) drain() { c.sent, c.out = append(c.sent, c.out...), c.out[:0] }

var _ firmware.SlotConn = (*tcpSlot)(nil)

// slotBoard is a program with one Slot as its only connection.
type slotBoard struct {
	slot *firmware.Slot
	dial *firmware.Slot // for the program's dials
	conn *tcpSlot
	p    *firmware.Program
	now  time.Duration
	buf  []byte
}

func newSlotBoard(t *testing.T, room int) *slotBoard {
	t.Helper()
	b := &slotBoard{conn: &tcpSlot{state: "closed", room: room}, buf: make([]byte, 512)}
	b.slot = &firmware.Slot{ID: 1, Conn: b.conn, Port: control.Port}
	p, err := firmware.Boot(slotAdapter{b}, firmware.MemFlash{}, firmware.Options{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.p = p
	b.poll(t)
	if b.conn.state != "listen" {
		t.Fatalf("a fresh slot is %s, not listening", b.conn.state)
	}
	return b
}

func (b *slotBoard) poll(t *testing.T) {
	t.Helper()
	for i := 0; i < 10; i++ {
		busy, err := b.slot.Poll(b.now, b.p, b.buf)
		if err != nil {
			t.Fatal(err)
		}
		if !busy {
			return
		}
	}
}

// slotAdapter is the Board around the slot, as the Pico W adapter's.
type slotAdapter struct{ b *slotBoard }

func (a slotAdapter) SendUDP(uint16, node.Addr, uint16, []byte) error { return nil }
func (a slotAdapter) Listen(firmware.Port) error                      { return nil }
func (a slotAdapter) Unlisten(firmware.Port) error                    { return nil }
func (a slotAdapter) Dial(c control.ConnID, _ node.Addr, _ uint16) error {
	if a.b.dial == nil || !(a.b.dial.Free() || a.b.dial.ID == 0) {
		return errors.New("no free connection")
	}
	a.b.dial.Dialed(c)
	a.b.dial.Conn.(*tcpSlot).state = "syn_sent"
	return nil
}
func (a slotAdapter) Write(c control.ConnID, data []byte) error {
	if a.b.dial != nil && c == a.b.dial.ID {
		return a.b.dial.Write(data)
	}
	return a.b.slot.Write(data)
}
func (a slotAdapter) Close(c control.ConnID) error {
	if a.b.dial != nil && c == a.b.dial.ID {
		return a.b.dial.Close()
	}
	return a.b.slot.Close()
}
func (a slotAdapter) Peer(c control.ConnID) node.Addr { return a.b.slot.Peer() }
func (a slotAdapter) SetPin(int, int)                 {}
func (a slotAdapter) ReadPin(int) int                 { return 0 }
func (a slotAdapter) Console([]byte)                  {}
func (a slotAdapter) Rejoin() error                   { return nil }

func TestASlotServesAControllerAndListensAgain(t *testing.T) {
	b := newSlotBoard(t, 4096)
	c := b.conn
	for round := 1; round <= 3; round++ {
		c.state = "established"
		c.in = []byte(`{"action": "ping"}` + "\n")
		b.poll(t)
		c.drain()
		if !strings.Contains(string(c.sent), `"action": "ping"`) {
			t.Fatalf("round %d: no reply: %q", round, c.sent)
		}
		c.sent = nil
		c.state = "closed" // the controller closes and the close completes
		b.poll(t)
		if c.state != "listen" || c.listens != round+1 {
			t.Fatalf("round %d: %s after the controller left, %d listens", round, c.state, c.listens)
		}
	}
}

// TestAHalfClosedControllerGetsItsReply is the client that sends a request
// and shuts its side down (SHUT_WR) before reading: the reply still goes
// out, then the board closes its side.
func TestAHalfClosedControllerGetsItsReply(t *testing.T) {
	b := newSlotBoard(t, 4096)
	c := b.conn
	c.state = "established"
	c.in = []byte(`{"action": "get_version"}` + "\n")
	c.state = "close_wait" // data and FIN arrived together
	b.poll(t)
	c.drain()
	if !strings.Contains(string(c.sent), `"version"`) || c.state != "last_ack" {
		t.Fatalf("state %s, sent %q", c.state, c.sent)
	}
	b.now += time.Second
	c.state = "closed" // our FIN acknowledged
	b.poll(t)
	if c.state != "listen" {
		t.Fatalf("%s after the close finished", c.state)
	}
}

// TestAControllerThatReadsNothingIsCutOffAndTheBoardGoesOn pipelines
// commands and never reads: the board answers while its send buffer and
// backlog have room, then drops that controller alone, and serves the next.
func TestAControllerThatReadsNothingIsCutOffAndTheBoardGoesOn(t *testing.T) {
	b := newSlotBoard(t, 2048)
	c := b.conn
	c.state = "established"
	line := []byte(`{"action": "ping"}` + "\n")
	for i := 0; i < 2000 && b.slot.CutOff == 0; i++ {
		c.in = append(c.in, line...)
		b.poll(t) // never drained
	}
	if b.slot.CutOff != 1 || len(c.sent) != 0 {
		t.Fatalf("after 2000 unread replies: cut off %d", b.slot.CutOff)
	}
	if c.state != "listen" {
		t.Fatalf("the slot is %s, not listening for the next controller", c.state)
	}
	c.state = "established"
	c.in = line
	b.poll(t)
	c.drain()
	if !bytes.Contains(c.sent, []byte(`"ping"`)) {
		t.Fatal("the next controller got no reply")
	}
}

// TestABigReplyGoesOutAsTheControllerReads sends a reply larger than the
// stack's buffer to a controller that reads slowly: all of it arrives, in
// order, and the board's close waits for it.
func TestABigReplyGoesOutAsTheControllerReads(t *testing.T) {
	b := newSlotBoard(t, 256)
	c := b.conn
	c.state = "established"
	b.poll(t)
	pad := strings.Repeat("y", 3000)
	c.in = []byte(`{"action": "ping", "pad": "` + pad + `"}` + "\n")
	b.poll(t)
	b.slot.Close() // as the program does after an error reply, say
	for i := 0; i < 100 && c.state == "established"; i++ {
		c.drain()
		b.poll(t)
	}
	c.drain()
	if !strings.Contains(string(c.sent), pad) || !strings.HasSuffix(string(c.sent), "\n") {
		t.Fatalf("the controller got %d bytes, not the whole reply", len(c.sent))
	}
	if c.state != "fin_wait" {
		t.Fatalf("%s: the board did not close after the reply", c.state)
	}
}

// TestAVanishedControllerDoesNotHoldTheSlot: the board closed, and the FIN
// is never acknowledged (the controller lost power): after Linger the slot
// listens again.
func TestAVanishedControllerDoesNotHoldTheSlot(t *testing.T) {
	b := newSlotBoard(t, 4096)
	c := b.conn
	c.state = "established"
	b.poll(t)
	c.state = "close_wait"
	b.poll(t)
	if c.state != "last_ack" {
		t.Fatalf("%s", c.state)
	}
	b.now += firmware.Linger - time.Millisecond
	b.poll(t)
	if c.state != "last_ack" {
		t.Fatal("the slot gave up on the close too early")
	}
	b.now += time.Millisecond
	b.poll(t)
	if c.state != "listen" {
		t.Fatalf("%s after Linger", c.state)
	}
}

// TestAnOutgoingSlotCarriesAnAppsConnection: an app dials (the echo client),
// the adapter opens the connection on a free slot, and the slot reports its
// outcome; a refused dial frees the slot and the app hears of it.
func TestAnOutgoingSlotCarriesAnAppsConnection(t *testing.T) {
	b := newSlotBoard(t, 4096)
	b.dial = &firmware.Slot{Conn: &tcpSlot{state: "closed", room: 4096}}
	out := b.dial.Conn.(*tcpSlot)
	b.p.Joined(b.now, node.Addr{10, 0, 0, 2}, node.Addr{10, 0, 0, 255})
	if err := b.p.StartApp(b.now, apps.Spec{App: "echo-client", ServerIP: node.Addr{10, 0, 0, 9}, Interval: time.Second}); err != nil {
		t.Fatal(err)
	}
	b.now += time.Second
	b.p.Tick(b.now) // the client dials
	if out.state != "syn_sent" || b.dial.ID < firmware.DialBase {
		t.Fatalf("the dial went nowhere: %s, id %d", out.state, b.dial.ID)
	}
	out.state = "established"
	b.pollDial(t)
	b.now += time.Second
	b.p.Tick(b.now) // the client sends "msg 1"
	b.pollDial(t)
	if string(out.out) != "msg 1\n" {
		t.Fatalf("sent %q", out.out)
	}
	out.in = append(out.in, out.out...) // the echo
	b.pollDial(t)
	if st := b.p.Apps()[0].Stats; st.Successes != 1 {
		t.Fatalf("echo client %+v", st)
	}
	out.state = "closed" // the server goes away
	b.pollDial(t)
	if !b.dial.Free() {
		t.Fatal("a finished outgoing slot is not free")
	}
	b.now += time.Second
	b.p.Tick(b.now) // it dials again, and is refused
	if b.dial.Free() || out.state != "syn_sent" {
		t.Fatal("no second dial")
	}
	out.state = "closed"
	b.pollDial(t)
	if !b.dial.Free() || b.p.Apps()[0].Stats.Errors < 2 {
		t.Fatalf("a refused dial: free %v, %+v", b.dial.Free(), b.p.Apps()[0].Stats)
	}
}

func (b *slotBoard) pollDial(t *testing.T) {
	t.Helper()
	for i := 0; i < 10; i++ {
		if busy, err := b.dial.Poll(b.now, b.p, b.buf); err != nil || !busy {
			return
		}
	}
}

// A slot left half-open (a SYN taken, the handshake never done: the
// SYN-ACK lost, or never sent as in cyw43439#82) is aborted after
// HalfOpenLimit and listens again; the program hears each, and opens the
// port anew after two within UnansweredWindow. A handshake finishing in
// time is left alone.
func TestAHalfOpenSlotListensAgainAndIsReported(t *testing.T) {
	b := newSlotBoard(t, 1024)
	b.p.Joined(b.now, node.Addr{10, 0, 0, 2}, node.Addr{10, 0, 0, 255})
	b.poll(t)
	restarts := func() any { return b.p.State(b.now).Stats["listen_restarts"] }

	before := b.conn.aborts
	b.conn.state = "syn_rcvd" // a SYN; the ACK comes 2.9 s later
	b.poll(t)
	b.now += firmware.HalfOpenLimit - 100*time.Millisecond
	b.poll(t)
	if b.conn.aborts != before {
		t.Fatalf("a handshake under the limit was aborted")
	}
	b.conn.state = "established"
	b.poll(t)
	b.conn.state, b.conn.in = "close_wait", nil
	b.poll(t)
	b.now += firmware.Linger
	b.conn.state = "closed"
	b.poll(t)
	if b.conn.state != "listen" {
		t.Fatalf("after a connection: %s", b.conn.state)
	}

	for i := range 2 {
		aborts, listens := b.conn.aborts, b.conn.listens
		b.conn.state = "syn_rcvd" // never completes
		b.poll(t)
		b.now += firmware.HalfOpenLimit
		b.poll(t)
		if b.conn.aborts == aborts || b.conn.listens == listens || b.conn.state != "listen" {
			t.Fatalf("half-open %d: %d aborts, %d listens, %s: want aborted and listening again", i+1, b.conn.aborts-aborts, b.conn.listens-listens, b.conn.state)
		}
		b.now += time.Second
	}
	if got := restarts(); fmt.Sprint(got) != "1" {
		t.Fatalf("two half-open attempts %v apart: listen_restarts %v, want 1", firmware.HalfOpenLimit+time.Second, got)
	}
}

// A slot whose Listen fails reports it from Poll and tries again on its
// next Poll (the adapter logs what Poll returns, at most once a port a
// minute); once it listens it waits without listening again, however often
// it is polled, until a connection through it is over.
func TestASlotWhoseListenFailsTriesAgain(t *testing.T) {
	b := newSlotBoard(t, 1024)
	c := b.conn
	c.state, c.failNext = "closed", true // the listen broke, and the stack refuses the next
	if _, err := b.slot.Poll(b.now, b.p, b.buf); err == nil {
		t.Fatal("a failed listen went unreported")
	}
	listens := c.listens
	b.poll(t)
	if c.state != "listen" || c.listens != listens+1 {
		t.Fatalf("after a failed listen: %s, %d more listens", c.state, c.listens-listens)
	}
	for range 100 {
		b.now += 2 * time.Millisecond
		b.poll(t)
	}
	if c.listens != listens+1 {
		t.Fatalf("a waiting slot listened %d times more", c.listens-listens-1)
	}
	c.state, c.in = "established", []byte(`{"action": "ping"}`+"\n")
	b.poll(t)
	c.drain()
	if !strings.Contains(string(c.sent), `"ping"`) {
		t.Fatalf("no reply after the retried listen: %q", c.sent)
	}
}
