package firmware_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
)

// The WiFi watchdog: a board that heard others and then hears nobody for
// four failover bounds (20 s at the defaults) joins WiFi again, then after
// 40 s, 80 s... while it stays deaf; hearing a board again starts the
// bounds over. A board alone from its boot is left alone, and so is every
// board when the watchdog is off.
func TestTheWatchdogRejoinsADeafRadio(t *testing.T) {
	l := &lan{t: t}
	l.add(1, nil)
	b := l.add(2, nil)
	l.run(10 * time.Second)
	b.deaf = true
	l.run(19 * time.Second)
	if b.rejoins != 0 {
		t.Fatalf("rejoined %d times within 19 s of silence", b.rejoins)
	}
	l.run(2 * time.Second)
	if b.rejoins != 1 {
		t.Fatalf("rejoined %d times after 21 s of silence, want 1", b.rejoins)
	}
	// The first came 20 s after the last heartbeat heard, at most 2 s ago.
	l.run(37 * time.Second)
	if b.rejoins != 1 {
		t.Fatalf("rejoined again within 37 s of the first, want the bound doubled")
	}
	l.run(3 * time.Second)
	if b.rejoins != 2 {
		t.Fatalf("rejoins 40 s after the first: %d, want 2", b.rejoins)
	}
	b.deaf = false
	l.run(5 * time.Second)
	b.deaf = true
	l.run(21 * time.Second)
	if b.rejoins != 3 {
		t.Fatalf("hearing a board again starts the bounds over: %d rejoins, want 3", b.rejoins)
	}
	var said []string
	for _, line := range b.lines() {
		if line.Kind == firmware.EvRejoin {
			said = append(said, line.Detail)
		}
	}
	if len(said) != 3 || said[0] != "heard no board for 20s while joined" || said[1] != "heard no board for 40s while joined" {
		t.Errorf("wifi_rejoin events: %q", said)
	}
}

func TestTheWatchdogLeavesALoneBoardAlone(t *testing.T) {
	l := &lan{t: t}
	a := l.add(1, nil)
	l.run(10 * time.Minute)
	if a.rejoins != 0 {
		t.Errorf("a board that never heard another rejoined %d times", a.rejoins)
	}
}

func TestTheWatchdogCanBeTurnedOff(t *testing.T) {
	l := &lan{t: t}
	l.add(1, nil)
	flash := firmware.MemFlash{}
	if err := firmware.Format(flash); err != nil {
		t.Fatal(err)
	}
	if err := flash.WriteFile(firmware.FileSettings, firmware.Settings{Name: "pico2", NoWatchdog: true}.JSON()); err != nil {
		t.Fatal(err)
	}
	b := l.add(2, flash)
	l.run(10 * time.Second)
	b.deaf = true
	l.run(10 * time.Minute)
	if b.rejoins != 0 {
		t.Errorf("wifi_watchdog false: %d rejoins", b.rejoins)
	}
}

// A board off the network (the radio lost it, and its own joins fail) is
// made to join again 30 s after it lost it.
func TestTheWatchdogRestartsAJoinThatNeverEnds(t *testing.T) {
	l := &lan{t: t}
	l.add(1, nil)
	b := l.add(2, nil)
	l.run(10 * time.Second)
	b.p.Lost(l.now)
	l.run(29 * time.Second)
	if b.rejoins != 0 {
		t.Fatalf("rejoined within 29 s of the loss")
	}
	l.run(2 * time.Second)
	if b.rejoins != 1 {
		t.Fatalf("rejoins 31 s after the loss: %d, want 1", b.rejoins)
	}
}

// A listener that leaves connection attempts unanswered (cyw43439#82) is
// opened again after the second within 10 s, unless one was accepted in
// between or the watchdog is off.
func TestAnUnansweredListenerIsOpenedAgain(t *testing.T) {
	l := &lan{t: t}
	b := l.add(2, nil)
	port := b.p.ControlPort()
	restarts := func() []string {
		var out []string
		for i, s := range b.ports {
			if s == fmt.Sprint("-", true, port) && i+1 < len(b.ports) && b.ports[i+1] == fmt.Sprint("+", true, port) {
				out = append(out, s)
			}
		}
		return out
	}
	b.ports = nil
	b.p.Unanswered(l.now, port)
	if len(restarts()) != 0 {
		t.Fatalf("one unanswered attempt restarted the listener: %v", b.ports)
	}
	l.run(11 * time.Second)
	b.p.Unanswered(l.now, port)
	if len(restarts()) != 0 {
		t.Fatalf("two attempts 11 s apart restarted the listener: %v", b.ports)
	}
	l.run(2 * time.Second)
	b.p.Unanswered(l.now, port)
	if len(restarts()) != 1 || b.p.State(l.now).Stats["listen_restarts"] != 1 {
		t.Fatalf("two attempts 2 s apart: %v, stats %v", b.ports, b.p.State(l.now).Stats["listen_restarts"])
	}
	b.p.Unanswered(l.now, port)
	b.p.Opened(l.now, 1, port) // the listener answers again
	b.p.Unanswered(l.now+time.Second, port)
	if len(restarts()) != 1 {
		t.Fatalf("an accepted connection in between: %v", b.ports)
	}

	flash := firmware.MemFlash{}
	firmware.Format(flash)
	flash.WriteFile(firmware.FileSettings, firmware.Settings{Name: "pico3", NoWatchdog: true}.JSON())
	off := l.add(3, flash)
	off.ports = nil
	off.p.Unanswered(l.now, port)
	off.p.Unanswered(l.now+time.Second, port)
	if len(off.ports) != 0 {
		t.Errorf("watchdog off: %v", off.ports)
	}
}
