package sim

import (
	"fmt"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node/control"
)

// service is a board's control server: the control core of node/control
// driven over the board's TCP port, with its pins on the emulated GPIO.
// The core outlives reboots (reset, deep sleep, update): the emulated
// firmware sets its pins up again on boot. A power loss ends it.
type service struct {
	b        *Board
	core     *control.Server
	ln       *netsim.TCPListener
	conns    map[control.ConnID]*netsim.TCPConn
	next     control.ConnID
	tick     clock.Timer
	deadline time.Duration
	acts     []control.Action // collected during apply, carried out after
	slept    []queued         // data that came in during a light sleep
}

// queued is data the stack took while the CPU slept; the program reads it
// on waking.
type queued struct {
	id   control.ConnID
	data []byte
}

func (b *Board) startService() error {
	c := b.c
	if b.svc == nil {
		cfg := c.cfg.Control
		cfg.EpochNS = netsim.Epoch.UnixNano()
		cfg.Version = b.flash.Version()
		cfg.Inflate = firmware.Inflate
		s := &service{b: b, core: control.NewServer(cfg, c.clk.Now()), deadline: -1}
		if !b.host.Associated() {
			s.core.SetConnected(c.clk.Now(), false) // the LED blinks "connecting" until the radio joins
		}
		for _, p := range c.cfg.Pins[b.name] {
			mode := control.Input
			if p.Output {
				mode = control.Output
			}
			if err := s.core.Setup(c.clk.Now(), p.Pin, mode, p.Value); err != nil {
				return fmt.Errorf("%s GPIO%d: %w", b.name, p.Pin, err)
			}
		}
		s.tick = c.clk.AfterFunc(clock.Never, s.onTick)
		b.svc = s
	}
	s := b.svc
	s.conns = map[control.ConnID]*netsim.TCPConn{}
	ln, err := b.host.ListenTCP(c.cfg.ControlPort, s.accept)
	if err != nil {
		return err
	}
	s.ln = ln
	s.apply()
	return nil
}

// stopService ends the control server for good (power loss).
func (b *Board) stopService() {
	if b.svc == nil {
		return
	}
	b.svc.tick.Stop()
	b.svc = nil
}

func (s *service) accept(conn *netsim.TCPConn) {
	s.next++
	id := s.next
	s.conns[id] = conn
	conn.OnData = func(p []byte) {
		if s.b.asleep() {
			s.slept = append(s.slept, queued{id, append([]byte(nil), p...)})
			return
		}
		s.core.Receive(s.b.c.clk.Now(), id, p)
		s.apply()
	}
	conn.OnClose = func() {
		if _, open := s.conns[id]; open {
			delete(s.conns, id)
			s.core.Closed(s.b.c.clk.Now(), id)
			s.apply()
		}
	}
	s.core.Open(s.b.c.clk.Now(), id)
	s.apply()
}

// wake hands the core what came in during a light sleep.
func (s *service) wake() {
	q := s.slept
	s.slept = nil
	for _, d := range q {
		s.core.Receive(s.b.c.clk.Now(), d.id, d.data)
	}
	s.apply()
}

func (s *service) onTick() {
	s.core.Tick(s.b.c.clk.Now())
	s.apply()
}

// apply carries out the core's Ready; board actions wait until the core has
// been advanced, since they may reboot the board under it.
func (s *service) apply() {
	b := s.b
	rd := s.core.Ready()
	for _, w := range rd.Writes {
		if conn := s.conns[w.Conn]; conn != nil {
			conn.Write(w.Data)
		}
	}
	for _, id := range rd.Closes {
		if conn := s.conns[id]; conn != nil {
			delete(s.conns, id)
			conn.Close()
		}
	}
	for _, p := range rd.Pins {
		b.gpio.set(PinEvent{At: p.At, Pin: p.Pin, Value: p.Value, Cause: p.Cause.String()})
		if p.Pin != control.LED {
			b.c.record(Event{At: p.At, Board: b.name, Kind: EvPin, Detail: fmt.Sprintf("GPIO%d = %d (%s)", p.Pin, p.Value, p.Cause)})
			for _, r := range b.apps {
				r.app.PinChanged(p.At, p.Pin, p.Value)
				r.apply()
			}
		}
	}
	acts := append(s.acts[:0], rd.Actions...)
	if rd.Deadline != s.deadline {
		s.deadline = rd.Deadline
		s.tick.Reset(rd.Deadline - b.c.clk.Now())
	}
	s.core.Advance()
	for _, a := range acts {
		b.act(a)
	}
}
