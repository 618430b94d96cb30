package control

import (
	"strconv"
	"strings"
	"time"

	"github.com/picosim/picosim/node/mac"
	"github.com/picosim/picosim/node/outbox"
)

// Protocol constants of piconetcontrol on a Pico W.
const (
	Port       = 12345 // default TCP port
	MaxPin     = 28    // GPIO 0..28
	MaxCommand = 8192  // longest command line, in bytes
	Version    = "1.13.0"
	// ActionDelay is how long reset and sleep wait after replying, so that
	// the reply gets out first, as the real server does.
	ActionDelay = time.Second
	// MaxTimeout is the longest write_pin timeout, and the longest sleep,
	// accepted: 2^29 ms (about 6.2 days), the longest delay MicroPython's
	// asyncio can wait (its ticks_ms wraps at 2^30 ms and compares
	// half-periods). Above it a command is refused: a fail-safe that might
	// never fire is no fail-safe, and a duration must not overflow.
	MaxTimeout = (1 << 29) * time.Millisecond
)

// ConnID names one controller connection; the driver picks them.
type ConnID = outbox.ConnID

// Mode of a pin.
type Mode uint8

const (
	Unset Mode = iota
	Input
	Output
)

func (m Mode) String() string { return [...]string{"unset", "input", "output"}[m] }

// Cause says why a pin changed (outbox's causes).
type Cause = outbox.Cause

const (
	BySetup  = outbox.BySetup
	ByWrite  = outbox.ByWrite
	ByRevert = outbox.ByRevert
	ByReset  = outbox.ByReset
	ByBlink  = outbox.ByBlink // the LED blinking the board's status
	ByApp    = outbox.ByApp   // an app of the firmware drove it (Drive)
)

// LED is the pin number of the on-board LED in PinChange (it is wired to the
// WiFi chip, not to GPIO).
const LED = -1

// PinChange is a pin (or the LED) the driver must set.
type PinChange = outbox.PinChange

// Write is data the driver must send on a connection.
type Write = outbox.Write

// ActionKind is something the whole board must do.
type ActionKind uint8

const (
	ActReset      ActionKind = iota + 1 // reboot; pins are already back at their setup values
	ActDeepSleep                        // power off for For, then boot
	ActLightSleep                       // stop processing for For
	ActUpdate                           // install Files and reboot into them
)

// Action is a board-wide action.
type Action struct {
	Kind  ActionKind
	For   time.Duration
	Files []File
}

// File is one file of an update, decoded.
type File struct {
	Name    string
	Content []byte
}

// Ready is what the server wants done: Writes, Closes (after the writes
// before them), Pins, and board-wide Actions as its Events. Its slices are
// reused after Advance.
type Ready = outbox.Ready[Action]

// Config describes the board the server runs on.
type Config struct {
	Board   string // default "Raspberry Pi Pico W with RP2040"
	Version string // default Version
	// EpochNS is added to the simulated time in time_received, so that
	// replies carry plausible wall-clock nanoseconds.
	EpochNS int64
	// MaxConns bounds simultaneous connections. Default 4. A connection
	// beyond it takes the place of the one whose last command is oldest, if
	// that is at least Evict old; otherwise it gets an error reply and is
	// closed. So connections that are silent, or send a command a byte at a
	// time, cannot keep a controller out for longer than Evict.
	MaxConns int
	// Evict is how long a connection must have sent no complete command
	// before a new connection may take its place. Default 2s.
	Evict time.Duration
	// IdleTimeout closes a connection that has sent no complete command for
	// that long (bytes without a newline do not count). Default 60s.
	IdleTimeout time.Duration
	// RevertOnLoss reverts every held pin when the board loses its master
	// (MasterLost) or the connection that wrote it closes. Default off.
	RevertOnLoss bool
	// HeapBytes is the board's heap, for get_info. Default 192 KiB.
	HeapBytes int
	// Inflate decompresses an update sent with "compress": true (zlib or raw
	// deflate, after base64). The core leaves it to the driver so that it
	// needs no compress/flate, which pulls fmt and os in. Nil: compressed
	// updates are refused with an error reply.
	Inflate func([]byte) ([]byte, error)
	// Key, if set (16 to 32 bytes), turns on keyed control (auth.go): every
	// command must be signed. Nil: piconetcontrol's protocol, unsigned.
	Key []byte
	// NonceBase starts every nonce this server issues; it must differ for
	// every boot of every board holding the key (the firmware uses the
	// board's name and incarnation).
	NonceBase string
	// Locked, if set, says why every command is refused (AuthError): the
	// board was told to use a key it could not read, and fails closed.
	Locked string
	// Extensions are actions the firmware adds to the protocol's own, listed
	// by list_actions after them (picosim's firmware adds get_state).
	Extensions []Extension
}

// Extension is an action beyond the protocol's own. Do returns the fields
// its reply adds to the echoed request; an error becomes an error reply
// (ValueError).
type Extension struct {
	Name string
	Do   func(now time.Duration, req Value) ([]Field, error)
}

// pin is one GPIO. A hold begins with a write that changes an unheld pin;
// later writes while it is held move its end (the latest timeout counts) but
// not what it returns to: the value from before the hold began.
type pin struct {
	mode     Mode
	value    int
	setupVal int
	held     bool          // a revert is pending
	revertAt time.Duration // when it is due: the latest write's timeout
	revertTo int           // the value before the hold's first write
	heldBy   ConnID        // the connection of the latest write
}

type conn struct {
	nonce      string // keyed control: issued by get_nonce
	seq        int64  // keyed control: the last seq accepted
	buf        []byte
	discarding bool          // skipping the rest of an oversized line
	lastActive time.Duration // when it opened or its last line ended
	peer       [4]byte       // the peer's address; zero if unknown
}

// Server is the control protocol of one board.
type Server struct {
	cfg       Config
	booted    time.Duration
	pins      [MaxPin + 1]pin
	conns     map[ConnID]*conn
	order     []ConnID // connection ids in opening order: deterministic sweeps
	pending   []delayed
	asleep    time.Duration // light sleep until then
	led       blinker
	connected bool

	mac          *mac.MAC // keyed control; nil without a key
	nonces       uint64   // nonces issued since boot
	authFailures uint64

	rd Ready
	// dl is the deadline, computed again after any input (stale).
	dl    time.Duration
	stale bool
}

type delayed struct {
	at     time.Duration
	action Action
}

// NewServer boots the server at time now.
func NewServer(cfg Config, now time.Duration) *Server {
	if cfg.Board == "" {
		cfg.Board = "Raspberry Pi Pico W with RP2040"
	}
	if cfg.Version == "" {
		cfg.Version = Version
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.Evict <= 0 {
		cfg.Evict = 2 * time.Second
	}
	if cfg.HeapBytes <= 0 {
		cfg.HeapBytes = 192 << 10
	}
	s := &Server{cfg: cfg, booted: now, conns: map[ConnID]*conn{}, connected: true, stale: true}
	if len(cfg.Key) > 0 {
		// A key of the wrong length would leave the board open; the
		// firmware checks settings before this, so refuse loudly here.
		m, err := mac.New(cfg.Key)
		if err != nil {
			panic("control: " + err.Error())
		}
		s.mac = m
	}
	s.led.start(now, Idle)
	s.emitLED(now)
	return s
}

// Pin returns a pin's mode and value.
func (s *Server) Pin(n int) (Mode, int) {
	if n < 0 || n > MaxPin {
		return Unset, 0
	}
	return s.pins[n].mode, s.pins[n].value
}

// Held reports whether a pin has a revert pending, and when.
func (s *Server) Held(n int) (time.Duration, bool) {
	if n < 0 || n > MaxPin || !s.pins[n].held {
		return 0, false
	}
	return s.pins[n].revertAt, true
}

// Has reports whether connection c is open.
func (s *Server) Has(c ConnID) bool { return s.conns[c] != nil }

// Conns returns how many connections are open.
func (s *Server) Conns() int { return len(s.conns) }

// SetInput records the level the hardware reads on an input pin.
func (s *Server) SetInput(n, value int) {
	s.stale = true
	if n >= 0 && n <= MaxPin && s.pins[n].mode == Input {
		s.pins[n].value = value
	}
}

// Open reports a new connection from an unknown peer (OpenFrom).
func (s *Server) Open(now time.Duration, c ConnID) { s.OpenFrom(now, c, [4]byte{}) }

// Refused begins the error a connection gets, instead of a reply to its
// first command, when the server has no room for it: a client may try
// again later.
const Refused = "too many connections"

// OpenFrom reports a new connection from peer. One peer holds at most
// MaxConns-1 connections, so another host always finds a slot; and at most
// MaxConns are open. Where a new connection would pass either bound, it
// takes the place of the connection idle longest (of that peer's, for the
// first), if that one has been idle Evict or more; otherwise it gets an
// error reply and is closed.
func (s *Server) OpenFrom(now time.Duration, c ConnID, peer [4]byte) {
	s.stale = true
	if peer != ([4]byte{}) && s.cfg.MaxConns > 1 && s.count(peer) >= s.cfg.MaxConns-1 {
		if !s.evict(now, c, &peer, Refused+" from this host (at most "+strconv.Itoa(s.cfg.MaxConns-1)+" of "+strconv.Itoa(s.cfg.MaxConns)+": the last is kept for another)") {
			return
		}
	}
	if len(s.conns) >= s.cfg.MaxConns {
		if !s.evict(now, c, nil, Refused+" (at most "+strconv.Itoa(s.cfg.MaxConns)+")") {
			return
		}
	}
	s.conns[c] = &conn{lastActive: now, peer: peer}
	s.order = append(s.order, c)
	s.statusChanged(now)
}

// count is how many connections peer holds.
func (s *Server) count(peer [4]byte) int {
	n := 0
	for _, cn := range s.conns {
		if cn.peer == peer {
			n++
		}
	}
	return n
}

// evict makes room for connection c: it closes the connection idle longest
// (of peer's, if peer is set) when that one has been idle Evict or more, and
// reports true; otherwise it refuses c with why, and reports false.
func (s *Server) evict(now time.Duration, c ConnID, peer *[4]byte, why string) bool {
	var old ConnID
	idle := time.Duration(-1)
	for _, id := range s.order {
		cn := s.conns[id]
		if d := now - cn.lastActive; (peer == nil || cn.peer == *peer) && d > idle {
			old, idle = id, d
		}
	}
	if idle < s.cfg.Evict {
		s.reply(c, errorReply(Value{}, "OSError", why+"; each sent a command in the last "+seconds(s.cfg.Evict)+"s"))
		s.rd.Closes = append(s.rd.Closes, c)
		return false
	}
	s.reply(old, errorReply(Value{}, "OSError", "closed for a new connection: this one sent no command for "+seconds(idle)+"s ("+why+")"))
	s.rd.Closes = append(s.rd.Closes, old)
	s.Closed(now, old)
	return true
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// Closed reports that a connection ended (the peer closed it, or it broke).
func (s *Server) Closed(now time.Duration, c ConnID) {
	s.stale = true
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	for i, id := range s.order {
		if id == c {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	if s.cfg.RevertOnLoss {
		for n := range s.pins {
			if p := &s.pins[n]; p.held && p.heldBy == c {
				s.revert(now, n)
			}
		}
	}
	s.statusChanged(now)
}

// MasterLost reports that the board no longer sees a master. With
// RevertOnLoss, every held pin reverts now.
func (s *Server) MasterLost(now time.Duration) {
	s.stale = true
	if !s.cfg.RevertOnLoss {
		return
	}
	for n := range s.pins {
		if s.pins[n].held {
			s.revert(now, n)
		}
	}
}

// Receive hands the server bytes read from a connection.
func (s *Server) Receive(now time.Duration, c ConnID, data []byte) {
	s.stale = true
	cn := s.conns[c]
	if cn == nil {
		return
	}
	for len(data) > 0 {
		i := indexByte(data, '\n')
		if cn.discarding {
			if i < 0 {
				return
			}
			cn.discarding = false
			cn.lastActive = now
			data = data[i+1:]
			continue
		}
		if i < 0 {
			cn.buf = append(cn.buf, data...)
			if len(cn.buf) > MaxCommand {
				cn.buf = cn.buf[:0]
				cn.discarding = true
				s.reply(c, errorReply(Value{}, "ValueError", "command longer than "+strconv.Itoa(MaxCommand)+" bytes; it was skipped"))
			}
			return
		}
		line := data[:i]
		data = data[i+1:]
		if len(cn.buf) > 0 {
			line = append(cn.buf, line...)
			cn.buf = cn.buf[:0]
		}
		if len(line) > MaxCommand {
			cn.lastActive = now
			s.reply(c, errorReply(Value{}, "ValueError", "command longer than "+strconv.Itoa(MaxCommand)+" bytes; it was skipped"))
			continue
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue // the client's "\n\n" end-of-commands signal: not a command, nor activity
		}
		cn.lastActive = now
		s.command(now, c, line)
	}
}

// Tick fires what is due: reverts, delayed actions, idle timeouts, the LED.
// In light sleep only a revert runs, and it wakes the board: the fail-safe
// does not sleep.
func (s *Server) Tick(now time.Duration) {
	s.stale = true
	if now < s.asleep {
		if !s.RevertDue(now) {
			return // light sleep: nothing else runs; due work fires on waking
		}
		s.Wake(now)
	}
	for n := range s.pins {
		if p := &s.pins[n]; p.held && p.revertAt <= now {
			s.revert(now, n)
		}
	}
	keep := s.pending[:0]
	var due []delayed
	for _, d := range s.pending {
		if d.at <= now {
			due = append(due, d)
		} else {
			keep = append(keep, d)
		}
	}
	s.pending = keep
	for _, d := range due {
		s.act(now, d.action)
	}
	for _, c := range append([]ConnID(nil), s.order...) {
		if cn := s.conns[c]; cn != nil && now-cn.lastActive >= s.cfg.IdleTimeout {
			s.rd.Closes = append(s.rd.Closes, c)
			s.Closed(now, c)
		}
	}
	if s.led.advance(now) {
		s.emitLED(now)
	}
}

// RevertDue reports whether a pin's revert is due by now.
func (s *Server) RevertDue(now time.Duration) bool {
	for n := range s.pins {
		if p := &s.pins[n]; p.held && p.revertAt <= now {
			return true
		}
	}
	return false
}

// Asleep reports whether the board is in light sleep.
func (s *Server) Asleep(now time.Duration) bool { return now < s.asleep }

// Wake ends a light sleep now: a command arrived, or a revert is due.
// SetEpoch sets the wall-clock time of uptime 0 that time_received counts
// from (Config.EpochNS): a board that learned the time (NTP) after it
// booted.
func (s *Server) SetEpoch(ns int64) { s.cfg.EpochNS = ns }

func (s *Server) Wake(now time.Duration) {
	s.stale = true
	if now < s.asleep {
		s.asleep = now
		s.led.start(now, s.status())
		s.emitLED(now)
	}
}

// Ready returns what the server wants done since the last Advance.
func (s *Server) Ready() Ready {
	rd := s.rd
	rd.Deadline = s.Deadline()
	return rd
}

// Deadline is Ready().Deadline, without the rest: when Tick is due.
func (s *Server) Deadline() time.Duration {
	if s.stale {
		s.dl, s.stale = s.deadline(), false
	}
	return s.dl
}

// Advance acknowledges the last Ready.
func (s *Server) Advance() { s.rd.Reset() }

// deadline is the earliest of the due times; in light sleep, only reverts
// come before its end.
func (s *Server) deadline() time.Duration {
	d := s.led.next
	for _, p := range s.pending {
		d = min(d, p.at)
	}
	for _, c := range s.order {
		d = min(d, s.conns[c].lastActive+s.cfg.IdleTimeout)
	}
	d = max(d, s.asleep)
	for n := range s.pins {
		if s.pins[n].held {
			d = min(d, s.pins[n].revertAt)
		}
	}
	return d
}

func (s *Server) revert(now time.Duration, n int) {
	p := &s.pins[n]
	p.held = false
	if p.mode != Output || p.value == p.revertTo {
		return
	}
	p.value = p.revertTo
	s.rd.Pins = append(s.rd.Pins, PinChange{At: now, Pin: n, Value: p.value, Cause: ByRevert})
}

// act carries out a delayed action.
func (s *Server) act(now time.Duration, a Action) {
	switch a.Kind {
	case ActReset, ActDeepSleep, ActUpdate:
		// The board restarts: connections drop, holds end, pins go back to
		// their setup values.
		for _, c := range s.order {
			s.rd.Closes = append(s.rd.Closes, c)
		}
		s.conns, s.order = map[ConnID]*conn{}, nil
		for n := range s.pins {
			p := &s.pins[n]
			p.held = false
			if p.mode == Output && p.value != p.setupVal {
				p.value = p.setupVal
				s.rd.Pins = append(s.rd.Pins, PinChange{At: now, Pin: n, Value: p.value, Cause: ByReset})
			}
		}
		s.booted = now
		s.statusChanged(now)
	case ActLightSleep:
		s.asleep = now + a.For
		s.led.start(s.asleep, s.status())
	}
	s.rd.Events = append(s.rd.Events, a)
}

func (s *Server) reply(c ConnID, v Value) {
	data := append(v.Append(nil), '\n')
	s.rd.Writes = append(s.rd.Writes, Write{Conn: c, Data: data})
}

// Status returns what the LED shows: connecting, idle or active.
func (s *Server) Status() Status { return s.status() }

func (s *Server) status() Status {
	if !s.connected {
		return Connecting
	}
	if len(s.conns) > 0 {
		return Active
	}
	return Idle
}

func (s *Server) statusChanged(now time.Duration) {
	if st := s.status(); st != s.led.status {
		s.led.start(now, st)
		s.emitLED(now)
	}
}

func (s *Server) emitLED(now time.Duration) {
	s.rd.Pins = append(s.rd.Pins, PinChange{At: now, Pin: LED, Value: s.led.level, Cause: ByBlink})
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
