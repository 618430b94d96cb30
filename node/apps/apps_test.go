package apps

import (
	"errors"
	"testing"
	"time"

	"github.com/picosim/picosim/node"
)

func take(a App) Ready {
	rd := a.Ready()
	out := Ready{Datagrams: append(rd.Datagrams[:0:0], rd.Datagrams...), Dials: append(rd.Dials[:0:0], rd.Dials...),
		Writes: append(rd.Writes[:0:0], rd.Writes...), Closes: append(rd.Closes[:0:0], rd.Closes...),
		Pins: append(rd.Pins[:0:0], rd.Pins...), Deadline: rd.Deadline}
	a.Advance()
	return out
}

func TestNaiveRGBClientStopsForGoodAtItsFirstError(t *testing.T) {
	c := NewRGBClient(false, 0)
	c.Server = node.Addr{10, 0, 0, 1}
	c.Tick(0)
	rd := take(c)
	if len(rd.Dials) != 1 || rd.Dials[0].To != c.Server || rd.Dials[0].Port != RGBPort {
		t.Fatalf("ready %+v", rd)
	}
	c.Step(time.Second, Input{Kind: Connected, Conn: rd.Dials[0].Conn, Err: errors.New("refused")})
	c.Tick(time.Minute)
	if rd := take(c); len(rd.Dials)+len(rd.Writes) != 0 || !c.Stats().Crashed {
		t.Fatalf("the naive client went on: %+v", c.Stats())
	}
	if next := c.Ready().Deadline; next != Never {
		t.Fatalf("next tick %v", next)
	}
}

func TestRobustRGBClientRetriesWithinItsDeadlineAndFindsTheServerByName(t *testing.T) {
	c := NewRGBClient(true, 0)
	c.ServerName = "pico1"
	c.Step(0, Input{Kind: Viewed, View: View{Self: node.Addr{10, 0, 0, 2}, Master: node.Addr{10, 0, 0, 1},
		Members: []node.Member{{IP: node.Addr{10, 0, 0, 1}, Name: "pico1"}, {IP: node.Addr{10, 0, 0, 2}, Name: "pico2"}}}})
	c.Tick(0)
	first := take(c).Dials[0]
	if first.To != (node.Addr{10, 0, 0, 1}) {
		t.Fatalf("dialled %v", first.To)
	}
	c.Tick(c.TryTimeout) // the try times out: close it, dial again
	rd := take(c)
	if len(rd.Closes) != 1 || rd.Closes[0] != first.Conn || len(rd.Dials) != 1 || rd.Dials[0].Conn == first.Conn {
		t.Fatalf("ready %+v", rd)
	}
	again := rd.Dials[0].Conn
	c.Step(c.TryTimeout+10*time.Millisecond, Input{Kind: Connected, Conn: again})
	if w := take(c).Writes; len(w) != 1 || string(w[0].Data) != "GET Data" {
		t.Fatalf("request %+v", w)
	}
	c.Step(c.TryTimeout+20*time.Millisecond, Input{Kind: Data, Conn: again, Data: []byte("12,0,255")})
	if st := c.Stats(); st.Successes != 1 || st.Attempts != 1 || st.Crashed {
		t.Fatalf("stats %+v", st)
	}
	if rgb, _ := c.Last(); rgb != [3]int{12, 0, 255} {
		t.Fatalf("reading %v", rgb)
	}
	// A late reply on the abandoned connection is ignored.
	c.Step(time.Second, Input{Kind: Data, Conn: first.Conn, Data: []byte("1,1,1")})
	if rgb, _ := c.Last(); rgb != [3]int{12, 0, 255} {
		t.Fatal("a stale connection's reply was taken")
	}
}

func TestParseRGBRejectsWhatIsNotAReading(t *testing.T) {
	for _, s := range []string{"", "1,2", "1,2,3,4", "a,b,c", "256,0,0", "-1,0,0"} {
		if _, err := parseRGB(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestMirrorAppliesOnlyNewerLevels(t *testing.T) {
	self := node.Addr{10, 0, 0, 3}
	m := NewMirror("pico3", "pico2", "pico3", 2, 5, 0)
	m.Step(0, Input{Kind: Viewed, View: View{Self: self, Master: node.Addr{10, 0, 0, 1}, Members: []node.Member{{IP: self, Name: "pico3"}}}})
	msg := func(seq byte, level byte) []byte { return []byte{'M', 0, 0, 0, seq, 10, 0, 0, 3, level} }
	m.Step(0, Input{Kind: Datagram, From: node.Addr{10, 0, 0, 1}, Data: msg(2, 1)})
	m.Step(0, Input{Kind: Datagram, From: node.Addr{10, 0, 0, 1}, Data: msg(1, 0)}) // overtaken on the way
	pins := take(m).Pins
	if len(pins) != 1 || pins[0].Pin != 5 || pins[0].Value != 1 {
		t.Fatalf("pins %+v", pins)
	}
}
