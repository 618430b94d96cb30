package apps

import (
	"errors"
	"testing"
	"time"

	"github.com/picosim/picosim/node"
)

func take(a App) []Op {
	ops, _ := a.Ready()
	out := append([]Op(nil), ops...)
	a.Advance()
	return out
}

func TestNaiveRGBClientStopsForGoodAtItsFirstError(t *testing.T) {
	c := NewRGBClient(false, 0)
	c.Server = node.Addr{10, 0, 0, 1}
	c.Tick(0)
	ops := take(c)
	if len(ops) != 1 || ops[0].Kind != Dial || ops[0].To != c.Server || ops[0].Port != RGBPort {
		t.Fatalf("ops %+v", ops)
	}
	c.Connected(time.Second, ops[0].Conn, errors.New("refused"))
	c.Tick(time.Minute)
	if len(take(c)) != 0 || !c.Stats().Crashed {
		t.Fatalf("the naive client went on: %+v", c.Stats())
	}
	if _, next := c.Ready(); next != Never {
		t.Fatalf("next tick %v", next)
	}
}

func TestRobustRGBClientRetriesWithinItsDeadlineAndFindsTheServerByName(t *testing.T) {
	c := NewRGBClient(true, 0)
	c.ServerName = "pico1"
	c.View(0, node.Addr{10, 0, 0, 2}, node.Addr{10, 0, 0, 1}, []node.Member{{IP: node.Addr{10, 0, 0, 1}, Name: "pico1"}, {IP: node.Addr{10, 0, 0, 2}, Name: "pico2"}})
	c.Tick(0)
	first := take(c)[0]
	if first.To != (node.Addr{10, 0, 0, 1}) {
		t.Fatalf("dialled %v", first.To)
	}
	c.Tick(c.TryTimeout) // the try times out: close it, dial again
	ops := take(c)
	if len(ops) != 2 || ops[0].Kind != Close || ops[1].Kind != Dial || ops[1].Conn == first.Conn {
		t.Fatalf("ops %+v", ops)
	}
	c.Connected(c.TryTimeout+10*time.Millisecond, ops[1].Conn, nil)
	if w := take(c); len(w) != 1 || string(w[0].Data) != "GET Data" {
		t.Fatalf("request %+v", w)
	}
	c.Data(c.TryTimeout+20*time.Millisecond, ops[1].Conn, []byte("12,0,255"))
	if st := c.Stats(); st.Successes != 1 || st.Attempts != 1 || st.Crashed {
		t.Fatalf("stats %+v", st)
	}
	if rgb, _ := c.Last(); rgb != [3]int{12, 0, 255} {
		t.Fatalf("reading %v", rgb)
	}
	// A late reply on the abandoned connection is ignored.
	c.Data(time.Second, first.Conn, []byte("1,1,1"))
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
	m.View(0, self, node.Addr{10, 0, 0, 1}, []node.Member{{IP: self, Name: "pico3"}})
	msg := func(seq byte, level byte) []byte { return []byte{'M', 0, 0, 0, seq, 10, 0, 0, 3, level} }
	m.Datagram(0, node.Addr{10, 0, 0, 1}, msg(2, 1))
	m.Datagram(0, node.Addr{10, 0, 0, 1}, msg(1, 0)) // overtaken on the way
	ops := take(m)
	if len(ops) != 1 || ops[0].Kind != SetPin || ops[0].Pin != 5 || ops[0].Level != 1 {
		t.Fatalf("ops %+v", ops)
	}
}
