package control

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// board drives a Server the way a driver would, with a clock of its own.
type board struct {
	t       *testing.T
	s       *Server
	now     time.Duration
	replies map[ConnID][]map[string]any
	raw     map[ConnID][]string
	pins    []PinChange
	actions []Action
	closed  []ConnID
}

func newBoard(t *testing.T, cfg Config) *board {
	b := &board{t: t, replies: map[ConnID][]map[string]any{}, raw: map[ConnID][]string{}}
	b.s = NewServer(cfg, 0)
	b.apply()
	return b
}

func (b *board) apply() {
	rd := b.s.Ready()
	for _, w := range rd.Writes {
		for _, line := range strings.Split(strings.TrimSuffix(string(w.Data), "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				b.t.Fatalf("reply is not JSON: %q: %v", line, err)
			}
			b.replies[w.Conn] = append(b.replies[w.Conn], m)
			b.raw[w.Conn] = append(b.raw[w.Conn], line)
		}
	}
	for _, p := range rd.Pins {
		if p.Pin != LED {
			b.pins = append(b.pins, p)
		}
	}
	b.actions = append(b.actions, rd.Events...)
	b.closed = append(b.closed, rd.Closes...)
	b.s.Advance()
}

// run advances the clock to t, ticking at every deadline on the way.
func (b *board) run(to time.Duration) {
	for {
		d := b.s.Ready().Deadline
		if d == 0 || d > to {
			break
		}
		b.now = max(b.now, d)
		b.s.Tick(b.now)
		b.apply()
	}
	b.now = to
}

func (b *board) send(c ConnID, lines ...string) map[string]any {
	b.t.Helper()
	before := len(b.replies[c])
	b.s.Receive(b.now, c, []byte(strings.Join(lines, "\n")+"\n"))
	b.apply()
	if len(b.replies[c]) == before {
		return nil
	}
	return b.replies[c][len(b.replies[c])-1]
}

func (b *board) open(c ConnID) { b.s.Open(b.now, c); b.apply() }

func TestDocumentedExampleSequence(t *testing.T) {
	b := newBoard(t, Config{EpochNS: 1_700_000_000_000_000_000})
	b.open(1)
	setup := b.send(1, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
	if setup["error"] != nil || setup["time_received"] == nil {
		t.Fatalf("setup: %v", setup)
	}
	if r := b.send(1, `{"action": "read_pin", "pin": 2}`); r["value"] != 0.0 {
		t.Fatalf("read before write: %v", r)
	}
	b.send(1, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 5}`)
	if r := b.send(1, `{"action": "read_pin", "pin": 2}`); r["value"] != 1.0 {
		t.Fatalf("read after write: %v", r)
	}
	b.run(4999 * time.Millisecond)
	if _, v := b.s.Pin(2); v != 1 {
		t.Fatal("reverted early")
	}
	b.run(5 * time.Second)
	if r := b.send(1, `{"action": "read_pin", "pin": 2}`); r["value"] != 0.0 {
		t.Fatalf("read after the timeout: %v", r)
	}
	last := b.pins[len(b.pins)-1]
	if last != (PinChange{At: 5 * time.Second, Pin: 2, Value: 0, Cause: ByRevert}) {
		t.Fatalf("revert %+v", last)
	}
	// The reply is the request, in its order, plus time_received and value,
	// formatted as Python's json.dumps does.
	if got := b.raw[1][1]; got != `{"action": "read_pin", "pin": 2, "time_received": 1700000000000000000, "value": 0}` {
		t.Fatalf("reply %s", got)
	}
}

func TestEveryAction(t *testing.T) {
	b := newBoard(t, Config{})
	b.open(1)
	if r := b.send(1, `{"action": "ping", "time_sent": 17}`); r["time_sent"] != 17.0 || r["error"] != nil {
		t.Fatalf("ping %v", r)
	}
	if r := b.send(1, `{"action": "get_version"}`); r["version"] != Version {
		t.Fatalf("version %v", r)
	}
	for _, name := range []string{"get_info", "get_resource_info"} {
		info, _ := b.send(1, `{"action": "`+name+`"}`)["info"].(map[string]any)
		for _, k := range []string{"mem_free", "mem_alloc", "uptime", "version", "board"} {
			if info[k] == nil {
				t.Fatalf("%s: info lacks %s: %v", name, k, info)
			}
		}
	}
	acts, _ := b.send(1, `{"action": "list_actions"}`)["actions"].([]any)
	if len(acts) != len(Actions) || acts[0] != "setup_pin" || acts[len(acts)-1] != "update" {
		t.Fatalf("actions %v", acts)
	}
	b.send(1, `{"action": "setup_pin", "pin": 5, "mode": "input"}`)
	b.s.SetInput(5, 1)
	if r := b.send(1, `{"action": "read_pin", "pin": "5"}`); r["value"] != 1.0 {
		t.Fatalf("input pin %v", r)
	}
}

func TestResetRestoresSetupValuesAfterASecond(t *testing.T) {
	b := newBoard(t, Config{})
	b.open(1)
	b.send(1, `{"action": "setup_pin", "pin": 3, "mode": "output", "value": 1}`)
	b.send(1, `{"action": "write_pin", "pin": 3, "value": 0, "timeout": 60}`)
	if r := b.send(1, `{"action": "reset"}`); r["error"] != nil {
		t.Fatal(r)
	}
	b.run(999 * time.Millisecond)
	if len(b.actions) != 0 {
		t.Fatal("reset before its second")
	}
	b.run(time.Second)
	if len(b.actions) != 1 || b.actions[0].Kind != ActReset {
		t.Fatalf("actions %+v", b.actions)
	}
	if _, v := b.s.Pin(3); v != 1 {
		t.Fatal("pin not back at its setup value")
	}
	if len(b.closed) != 1 || b.s.Conns() != 0 {
		t.Fatal("connections survive a reset")
	}
	if _, held := b.s.Held(3); held {
		t.Fatal("the hold survived the reset")
	}
}

func TestSleepAndUpdate(t *testing.T) {
	b := newBoard(t, Config{Inflate: zlibInflate})
	b.open(1)
	b.send(1, `{"action": "sleep", "time_ms": 3000, "deep": 1}`)
	b.send(1, `{"action": "sleep", "time_ms": 500, "deep": false}`)
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write([]byte("print('v2')"))
	w.Close()
	enc := base64.StdEncoding.EncodeToString(z.Bytes())
	if r := b.send(1, `{"action": "update", "files": {"main.py": "`+enc+`"}, "compress": true}`); r["error"] != nil {
		t.Fatal(r)
	}
	if r := b.send(1, `{"action": "update", "files": {"VERSION": "2.0"}}`); r["error"] != nil {
		t.Fatal(r)
	}
	b.run(time.Second)
	kinds := []ActionKind{}
	for _, a := range b.actions {
		kinds = append(kinds, a.Kind)
	}
	if len(b.actions) < 2 || b.actions[0].Kind != ActDeepSleep || b.actions[0].For != 3*time.Second || b.actions[1].Kind != ActLightSleep {
		t.Fatalf("actions %v", kinds)
	}
	var update *Action
	for i := range b.actions {
		if b.actions[i].Kind == ActUpdate {
			update = &b.actions[i]
			break
		}
	}
	if update == nil || string(update.Files[0].Content) != "print('v2')" {
		t.Fatalf("update %+v", b.actions)
	}
}

func TestInvalidCommandsGetErrorRepliesNamingTheProblem(t *testing.T) {
	b := newBoard(t, Config{Inflate: zlibInflate})
	b.open(1)
	b.send(1, `{"action": "setup_pin", "pin": 2, "mode": "output"}`)
	b.send(1, `{"action": "setup_pin", "pin": 4, "mode": "input"}`)
	cases := []struct{ cmd, exception, says string }{
		{`{"action": "fly"}`, "ValueError", `unknown action "fly", use "list_actions" to list available actions`},
		{`{"pin": 2}`, "ValueError", "missing fields: action"},
		{`{"action": 7}`, "ValueError", `"action" must be a string`},
		{`{"action": "setup_pin", "pin": 2}`, "ValueError", "incomplete command, missing fields: mode"},
		{`{"action": "write_pin", "pin": 2}`, "ValueError", "missing fields: value, timeout"},
		{`{"action": "setup_pin", "pin": 29, "mode": "output"}`, "ValueError", "pin 29 is out of range"},
		{`{"action": "setup_pin", "pin": -1, "mode": "output"}`, "ValueError", "out of range"},
		{`{"action": "setup_pin", "pin": "two", "mode": "output"}`, "ValueError", `"pin" must be an integer, got "two"`},
		{`{"action": "setup_pin", "pin": 2.5, "mode": "output"}`, "ValueError", `"pin" must be an integer`},
		{`{"action": "setup_pin", "pin": 2, "mode": "sideways"}`, "ValueError", `mode "sideways"`},
		{`{"action": "setup_pin", "pin": 4, "mode": "input", "value": 1}`, "ValueError", "input"},
		{`{"action": "write_pin", "pin": 4, "value": 1, "timeout": 1}`, "ValueError", "pin 4 is set up as an input"},
		{`{"action": "write_pin", "pin": 9, "value": 1, "timeout": 1}`, "GPIOPinNotSetupError", "pin 9 not setup"},
		{`{"action": "read_pin", "pin": 9}`, "GPIOPinNotSetupError", "pin 9 not setup"},
		{`{"action": "write_pin", "pin": 2, "value": 2, "timeout": 1}`, "ValueError", `"value" must be 0 or 1, got 2`},
		{`{"action": "write_pin", "pin": 2, "value": 1, "timeout": -1}`, "ValueError", "timeout must be 0 to 536870.912 seconds (about 6.2 days), got -1"},
		{`{"action": "write_pin", "pin": 2, "value": 1, "timeout": 1e10}`, "ValueError", "timeout must be 0 to 536870.912 seconds (about 6.2 days), got 1e+10"},
		{`{"action": "write_pin", "pin": 2, "value": 1, "timeout": 536871}`, "ValueError", "timeout must be 0 to 536870.912"},
		{`{"action": "write_pin", "pin": 2, "value": 1, "timeout": "soon"}`, "ValueError", `"timeout" must be a number`},
		{`{"action": "sleep", "time_ms": -5, "deep": 0}`, "ValueError", "time_ms must not be negative"},
		{`{"action": "sleep", "time_ms": 9007199254740991, "deep": 0}`, "ValueError", "time_ms must be at most 536870912 (about 6.2 days), got 9007199254740991"},
		{`{"action": "update", "files": {}}`, "ValueError", `"files" must be an object`},
		{`{"action": "update", "files": {"a": "!!"}, "compress": true}`, "ValueError", "not valid base64"},
		{`{"action": "update", "files": {"a": "aGVsbG8="}, "compress": true}`, "ValueError", "not valid deflate"},
	}
	for _, c := range cases {
		r := b.send(1, c.cmd)
		if r["exception"] != c.exception || !strings.Contains(r["error"].(string), c.says) {
			t.Errorf("%s\n  got %v, want %s containing %q", c.cmd, r, c.exception, c.says)
		}
		if r["action"] == nil && strings.Contains(c.cmd, `"action": "`) {
			t.Errorf("%s: the error reply does not echo the request: %v", c.cmd, r)
		}
	}
	for _, junk := range []string{`{"action": "ping"`, `[1, 2]`, `hello`, `"str"`} {
		r := b.send(1, junk)
		if r["exception"] != "ValueError" || len(r) != 2 {
			t.Errorf("%q: %v, want just error and exception", junk, r)
		}
	}
	if r := b.send(1, `{"action": "ping"}`); r["error"] != nil {
		t.Fatalf("the connection did not survive the errors: %v", r)
	}
}

func TestOversizedCommandIsSkippedAndTheConnectionGoesOn(t *testing.T) {
	b := newBoard(t, Config{})
	b.open(1)
	big := `{"action": "ping", "pad": "` + strings.Repeat("x", 9000) + `"}`
	// In pieces, as TCP delivers it.
	for i := 0; i < len(big); i += 1000 {
		b.s.Receive(b.now, 1, []byte(big[i:min(i+1000, len(big))]))
		b.apply()
	}
	b.send(1, "") // the newline that ends it
	if len(b.replies[1]) != 1 || !strings.Contains(b.replies[1][0]["error"].(string), "longer than 8192") {
		t.Fatalf("replies %v", b.raw[1])
	}
	if r := b.send(1, `{"action": "ping"}`); r["error"] != nil || len(b.replies[1]) != 2 {
		t.Fatalf("after the oversized command: %v", b.raw[1])
	}
}

func TestSeveralCommandsInOneReadAndOneCommandOverSeveral(t *testing.T) {
	b := newBoard(t, Config{})
	b.open(1)
	b.s.Receive(0, 1, []byte("{\"action\": \"ping\"}\n{\"action\": \"get_vers"))
	b.apply()
	b.s.Receive(0, 1, []byte("ion\"}\n\n"))
	b.apply()
	if len(b.replies[1]) != 2 || b.replies[1][1]["version"] != Version {
		t.Fatalf("replies %v", b.raw[1])
	}
}

func TestFailSafe(t *testing.T) {
	setup := func(cfg Config) *board {
		b := newBoard(t, cfg)
		b.open(1)
		b.send(1, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
		b.send(1, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 5}`)
		return b
	}
	t.Run("a pin reverts when its controller is gone", func(t *testing.T) {
		b := setup(Config{})
		b.s.Closed(b.now, 1)
		b.apply()
		b.run(10 * time.Second)
		if _, v := b.s.Pin(2); v != 0 {
			t.Fatal("no revert after the connection closed")
		}
		reverts := 0
		for _, p := range b.pins {
			if p.Cause == ByRevert {
				reverts++
				if p.At != 5*time.Second {
					t.Fatalf("revert at %v", p.At)
				}
			}
		}
		if reverts != 1 {
			t.Fatalf("%d reverts", reverts)
		}
	})
	t.Run("a new write replaces the pending revert", func(t *testing.T) {
		b := setup(Config{})
		b.run(2 * time.Second)
		b.send(1, `{"action": "write_pin", "pin": 2, "value": 0, "timeout": 60}`)
		b.send(1, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 10}`)
		b.run(11 * time.Second)
		if _, v := b.s.Pin(2); v != 1 {
			t.Fatal("the first write's revert fired")
		}
		b.run(12 * time.Second)
		if _, v := b.s.Pin(2); v != 0 {
			t.Fatal("the last write's revert did not fire at 12 s")
		}
	})
	t.Run("a rewrite of a held pin returns it to its value before the hold", func(t *testing.T) {
		// GPIO4 =1 (timeout 5) at 12 s, =0 (timeout 2) at 13 s: the latest
		// timeout ends the hold at 15 s, at 0, for good.
		b := newBoard(t, Config{})
		b.open(1)
		b.send(1, `{"action": "setup_pin", "pin": 4, "mode": "output", "value": 0}`)
		b.run(12 * time.Second)
		b.send(1, `{"action": "write_pin", "pin": 4, "value": 1, "timeout": 5}`)
		b.run(13 * time.Second)
		b.send(1, `{"action": "write_pin", "pin": 4, "value": 0, "timeout": 2}`)
		b.run(15 * time.Second)
		if _, v := b.s.Pin(4); v != 0 {
			t.Fatal("GPIO4 not back at 0 when the last hold ended")
		}
		if _, held := b.s.Held(4); held {
			t.Fatal("still held")
		}
		b.run(60 * time.Second)
		if _, v := b.s.Pin(4); v != 0 {
			t.Fatal("GPIO4 turned on again after the hold")
		}
	})
	t.Run("with RevertOnLoss, a rewritten pin returns to its value before the hold", func(t *testing.T) {
		b := setup(Config{RevertOnLoss: true})
		b.send(1, `{"action": "write_pin", "pin": 2, "value": 0, "timeout": 9}`)
		b.s.Closed(b.now, 1)
		b.apply()
		if _, v := b.s.Pin(2); v != 0 {
			t.Fatal("the lost controller's pin did not return to 0")
		}
	})
	t.Run("the longest timeout is accepted and held for its length", func(t *testing.T) {
		b := newBoard(t, Config{})
		b.open(1)
		b.send(1, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
		if r := b.send(1, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 536870.912}`); r["error"] != nil {
			t.Fatalf("MaxTimeout refused: %v", r)
		}
		if at, held := b.s.Held(2); !held || at != MaxTimeout {
			t.Fatalf("held %v until %v, want %v", held, at, MaxTimeout)
		}
	})
	t.Run("a revert due in light sleep wakes the board", func(t *testing.T) {
		b := setup(Config{})
		b.send(1, `{"action": "sleep", "time_ms": 60000, "deep": 0}`)
		b.run(2 * time.Second)
		if !b.s.Asleep(b.now) {
			t.Fatal("not asleep")
		}
		b.run(5 * time.Second)
		if _, v := b.s.Pin(2); v != 0 || b.s.Asleep(b.now) {
			t.Fatalf("at the deadline: GPIO2 %d, asleep %v", v, b.s.Asleep(b.now))
		}
	})
	t.Run("writing the value the pin holds schedules nothing", func(t *testing.T) {
		b := newBoard(t, Config{})
		b.open(1)
		b.send(1, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 1}`)
		b.send(1, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 5}`)
		if _, held := b.s.Held(2); held {
			t.Fatal("a revert was scheduled")
		}
	})
	t.Run("with RevertOnLoss, closing the connection reverts at once", func(t *testing.T) {
		b := setup(Config{RevertOnLoss: true})
		b.run(time.Second)
		b.s.Closed(b.now, 1)
		b.apply()
		if _, v := b.s.Pin(2); v != 0 {
			t.Fatal("no revert on session loss")
		}
	})
	t.Run("with RevertOnLoss, losing the master reverts at once", func(t *testing.T) {
		b := setup(Config{RevertOnLoss: true})
		b.s.MasterLost(b.now)
		b.apply()
		if _, v := b.s.Pin(2); v != 0 {
			t.Fatal("no revert on master loss")
		}
	})
	t.Run("without it, losing the master changes nothing", func(t *testing.T) {
		b := setup(Config{})
		b.s.MasterLost(b.now)
		b.apply()
		if _, v := b.s.Pin(2); v != 1 {
			t.Fatal("reverted on master loss with the option off")
		}
	})
}

func TestConnectionLimitAndIdleTimeout(t *testing.T) {
	b := newBoard(t, Config{MaxConns: 2, IdleTimeout: 30 * time.Second})
	b.open(1)
	b.open(2)
	b.open(3)
	if len(b.replies[3]) != 1 || b.replies[3][0]["exception"] != "OSError" || len(b.closed) != 1 || b.closed[0] != 3 {
		t.Fatalf("third connection: %v, closed %v", b.raw[3], b.closed)
	}
	b.run(20 * time.Second)
	b.send(2, `{"action": "ping"}`)
	b.run(31 * time.Second)
	if len(b.closed) != 2 || b.closed[1] != 1 || b.s.Conns() != 1 {
		t.Fatalf("idle close: %v, %d open", b.closed, b.s.Conns())
	}
}

func TestLEDShowsTheStatusPatterns(t *testing.T) {
	s := NewServer(Config{}, 0)
	var leds []PinChange
	take := func() {
		for _, p := range s.Ready().Pins {
			if p.Pin == LED {
				leds = append(leds, p)
			}
		}
		s.Advance()
	}
	take()
	for now := time.Duration(0); now <= 6*time.Second; now = s.Ready().Deadline {
		s.Tick(now)
		take()
	}
	// Idle: on at 0, off at 1.5, on at 3, off at 4.5, on at 6.
	want := []time.Duration{0, 1500 * ms, 3000 * ms, 4500 * ms, 6000 * ms}
	for i, at := range want {
		if leds[i].At != at || leds[i].Value != (i+1)%2 {
			t.Fatalf("idle pattern %+v", leds)
		}
	}
	s.Open(6*time.Second, 1)
	leds = nil
	take()
	s.Tick(6020 * ms)
	take()
	s.Tick(6120 * ms)
	take()
	if len(leds) != 3 || leds[0].Value != 1 || leds[1].At != 6020*ms || leds[1].Value != 0 || leds[2].Value != 1 {
		t.Fatalf("active pattern %+v", leds)
	}
}

// FuzzCommands: any bytes on a connection yield only well-formed replies,
// never a panic, and another connection keeps being served.
func FuzzCommands(f *testing.F) {
	for _, s := range []string{`{"action": "ping"}`, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 1}`, `{"action":"update","files":{"a":"eJw="},"compress":1}`, "\x00\xff\n\n", `[[[[`} {
		f.Add([]byte(s + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newBoard(t, Config{Inflate: zlibInflate})
		b.open(1)
		b.open(2)
		b.send(2, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
		b.s.Receive(b.now, 1, data)
		b.apply() // fails the test on a reply that is not JSON
		if r := b.send(2, `{"action": "ping"}`); r == nil || r["error"] != nil {
			t.Fatalf("the other connection is not served: %v", r)
		}
		b.run(time.Minute) // whatever it scheduled fires without a panic
	})
}

func TestCompressedUpdateNeedsAnInflater(t *testing.T) {
	b := newBoard(t, Config{})
	b.open(1)
	r := b.send(1, `{"action": "update", "files": {"main.py": "eJw="}, "compress": true}`)
	if r["exception"] != "ValueError" || !strings.Contains(r["error"].(string), "cannot decompress") {
		t.Fatalf("%v", r)
	}
}

func TestLEDShowsConnectingUntilTheNetworkIsUp(t *testing.T) {
	s := NewServer(Config{}, 0)
	s.SetConnected(0, false)
	s.Advance()
	for now := time.Duration(0); now < 5*time.Second; now = s.Ready().Deadline {
		s.Tick(now)
		s.Advance()
	}
	s.SetConnected(5*time.Second, true)
	rd := s.Ready()
	last := rd.Pins[len(rd.Pins)-1]
	if last.Pin != LED || last.Value != 1 || last.At != 5*time.Second {
		t.Fatalf("LED after joining: %+v", rd.Pins)
	}
	s.Advance()
	s.Tick(6500 * ms)
	if p := s.Ready().Pins; len(p) != 1 || p[0].Value != 0 {
		t.Fatalf("the LED does not blink the idle pattern after joining: %+v", p)
	}
}

func TestExtensionActionsAnswerAndAreListed(t *testing.T) {
	state := Extension{Name: "get_state", Do: func(now time.Duration, req Value) ([]Field, error) {
		if v, ok := req.Get("fail"); ok && v.Bool {
			return nil, errorString("no state yet")
		}
		return []Field{{"state", Obj(Field{"role", Str("MASTER")}, Field{"at_ms", Int(int64(now / time.Millisecond))})}}, nil
	}}
	b := newBoard(t, Config{Extensions: []Extension{state}})
	b.open(1)
	b.now = 1500 * ms
	b.send(1, `{"action": "get_state"}`)
	if got := b.raw[1][0]; got != `{"action": "get_state", "time_received": 1500000000, "state": {"role": "MASTER", "at_ms": 1500}}` {
		t.Fatalf("reply %s", got)
	}
	if r := b.send(1, `{"action": "get_state", "fail": true}`); r["exception"] != "ValueError" || r["error"] != "no state yet" {
		t.Fatalf("failing extension: %v", r)
	}
	acts, _ := b.send(1, `{"action": "list_actions"}`)["actions"].([]any)
	if len(acts) != len(Actions)+1 || acts[len(acts)-1] != "get_state" {
		t.Fatalf("actions %v", acts)
	}
	if r := b.send(1, `{"action": "get_stat"}`); !strings.Contains(fmt.Sprint(r["error"]), `unknown action "get_stat"`) {
		t.Fatalf("unknown action: %v", r)
	}
}
