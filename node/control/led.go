package control

import "time"

// Status is what the on-board LED shows, with the blink patterns of the real
// server: while joining WiFi, three 100 ms flashes 200 ms apart then a second
// dark; idle, 1.5 s on and 1.5 s off; with a controller connected, 20 ms
// flashes every 120 ms.
type Status uint8

const (
	Connecting Status = iota
	Idle
	Active
)

func (s Status) String() string { return [...]string{"connecting", "idle", "active"}[s] }

// Patterns gives each status's cycle: durations of on, off, on, off, ...
var Patterns = map[Status][]time.Duration{
	Connecting: {100 * ms, 200 * ms, 100 * ms, 200 * ms, 100 * ms, 1200 * ms},
	Idle:       {1500 * ms, 1500 * ms},
	Active:     {20 * ms, 100 * ms},
}

const ms = time.Millisecond

// blinker steps through the pattern of a status.
type blinker struct {
	status Status
	level  int
	step   int
	next   time.Duration // when the level changes next
}

func (b *blinker) start(now time.Duration, st Status) {
	b.status, b.level, b.step = st, 1, 0
	b.next = now + Patterns[st][0]
}

// advance moves through every change due by now and reports whether the
// level changed.
func (b *blinker) advance(now time.Duration) bool {
	was := b.level
	p := Patterns[b.status]
	for b.next <= now {
		b.step = (b.step + 1) % len(p)
		b.level = 1 - b.level
		b.next += p[b.step]
	}
	return b.level != was
}

// SetConnected tells the server whether the board has joined the network;
// the LED shows the connecting pattern until it has.
func (s *Server) SetConnected(now time.Duration, up bool) {
	s.stale = true
	s.connected = up
	if st := s.status(); st != s.led.status {
		s.led.start(now, st)
		s.emitLED(now)
	}
}
