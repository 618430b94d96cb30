package firmware_test

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// lan carries datagrams between fake boards at once and keeps their time:
// enough of a network to drive the program the way an adapter does.
type lan struct {
	t      *testing.T
	now    time.Duration
	boards []*fake
	queue  []dgram
}

type dgram struct {
	from, to node.Addr
	payload  []byte
}

var bcast = node.Addr{10, 0, 0, 255}

// fake is a Board: pins and console in memory, replies collected.
type fake struct {
	lan     *lan
	ip      node.Addr
	flash   firmware.MemFlash
	p       *firmware.Program
	pins    map[int]int
	inputs  map[int]int
	console []firmware.Line // parsed by lines
	raw     [][]byte
	rejoins int      // Rejoin calls
	deaf    bool     // its radio passes nothing, either way
	ports   []string // Listen (+) and Unlisten (-) calls, in order
	replies map[control.ConnID][]string
	closed  []control.ConnID
	sets    []pinSet // every SetPin, in order
}

type pinSet struct {
	at         time.Duration
	pin, value int
}

func (f *fake) Listen(pt firmware.Port) error {
	f.ports = append(f.ports, fmt.Sprint("+", pt.TCP, pt.Num))
	return nil
}
func (f *fake) Unlisten(pt firmware.Port) error {
	f.ports = append(f.ports, fmt.Sprint("-", pt.TCP, pt.Num))
	return nil
}
func (f *fake) Dial(control.ConnID, node.Addr, uint16) error {
	return errors.New("the fake LAN carries datagrams only")
}
func (f *fake) SendUDP(from uint16, to node.Addr, port uint16, payload []byte) error {
	if f.deaf {
		return nil
	}
	f.lan.queue = append(f.lan.queue, dgram{f.ip, to, append([]byte(nil), payload...)})
	return nil
}
func (f *fake) Write(c control.ConnID, data []byte) error {
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		f.replies[c] = append(f.replies[c], l)
	}
	return nil
}
func (f *fake) Close(c control.ConnID) error    { f.closed = append(f.closed, c); return nil }
func (f *fake) Peer(c control.ConnID) node.Addr { return node.Addr{192, 168, 1, byte(100 + c%100)} }
func (f *fake) SetPin(pin, value int) {
	f.pins[pin] = value
	f.sets = append(f.sets, pinSet{f.lan.now, pin, value})
}
func (f *fake) ReadPin(pin int) int { return f.inputs[pin] }
func (f *fake) Console(line []byte) { f.raw = append(f.raw, append([]byte(nil), line...)) }
func (f *fake) Rejoin() error       { f.rejoins++; return nil }

// lines parses the console lines printed since the last call; every line
// must be JSON.
func (f *fake) lines() []firmware.Line {
	for _, raw := range f.raw {
		var l firmware.Line
		if err := json.Unmarshal(raw, &l); err != nil {
			f.lan.t.Fatalf("console line is not JSON: %s: %v", raw, err)
		}
		f.console = append(f.console, l)
	}
	f.raw = f.raw[:0]
	return f.console
}

var _ firmware.Board = (*fake)(nil)

func (l *lan) add(last byte, flash firmware.MemFlash) *fake {
	l.t.Helper()
	if flash == nil {
		flash = firmware.MemFlash{}
	}
	f := &fake{lan: l, ip: node.Addr{10, 0, 0, last}, flash: flash, pins: map[int]int{}, inputs: map[int]int{}, replies: map[control.ConnID][]string{}}
	l.boards = append(l.boards, f)
	f.boot()
	return f
}

func (f *fake) boot() {
	f.lan.t.Helper()
	opt := firmware.Options{Name: "pico" + f.ip.String()[7:]}
	p, retry, err := firmware.Start(f, f.flash, opt, f.lan.now)
	for p == nil && err == nil { // the image crashed: the watchdog resets the board
		f.lan.now += retry
		p, retry, err = firmware.Start(f, f.flash, opt, f.lan.now)
	}
	if err != nil {
		f.lan.t.Fatalf("boot: %v", err)
	}
	f.p = p
	if err := p.Joined(f.lan.now, f.ip, bcast); err != nil {
		f.lan.t.Fatal(err)
	}
}

// run delivers datagrams and ticks programs until d has passed.
func (l *lan) run(d time.Duration) {
	end := l.now + d
	for {
		for len(l.queue) > 0 {
			q := l.queue[0]
			l.queue = l.queue[1:]
			for _, b := range l.boards {
				if b.p != nil && !b.deaf && b.ip != q.from && (q.to == bcast || q.to == b.ip) {
					b.p.Datagram(l.now, node.Port, q.from, node.Port, q.payload)
				}
			}
		}
		next := end
		for _, b := range l.boards {
			if b.p != nil {
				next = min(next, b.p.Deadline())
			}
		}
		if next > end || (next == end && len(l.queue) == 0 && l.now == end) {
			l.now = end
			return
		}
		l.now = max(l.now, next)
		for _, b := range l.boards {
			if b.p != nil && b.p.Deadline() <= l.now {
				b.p.Tick(l.now)
			}
		}
		if l.now == end && len(l.queue) == 0 {
			return
		}
	}
}

// state is the board's last state line.
func (f *fake) state() firmware.State {
	lines := f.lines()
	for i := len(lines) - 1; i >= 0; i-- {
		if s := lines[i].State; s != nil {
			return *s
		}
	}
	f.lan.t.Fatal("no state line")
	return firmware.State{}
}

// do sends one command on connection c and returns its reply.
func (f *fake) do(c control.ConnID, cmd string) map[string]any {
	f.lan.t.Helper()
	n := len(f.replies[c])
	f.p.Received(f.lan.now, c, []byte(cmd+"\n"))
	if len(f.replies[c]) == n {
		f.lan.t.Fatalf("%s: no reply", cmd)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(f.replies[c][n]), &m); err != nil {
		f.lan.t.Fatal(err)
	}
	return m
}

func TestBoardsAgreeAndReportTheirStateOnTheConsoleAndOverControl(t *testing.T) {
	l := &lan{t: t}
	a, b, c := l.add(2, nil), l.add(3, nil), l.add(4, nil)
	l.run(5 * time.Second)
	for _, f := range []*fake{a, b, c} {
		s := f.state()
		if s.Master != "pico2" || len(s.Members) != 3 || !s.Joined || s.LED != "idle" || s.Incarnation != 1 {
			t.Fatalf("%s: %+v", s.Name, s)
		}
		roles := map[string]string{}
		for _, m := range s.Members {
			roles[m.Name] = m.Role
		}
		if roles["pico2"] != "MASTER" || roles["pico3"] != "WORKER1" || roles["pico4"] != "WORKER2" {
			t.Fatalf("%s sees roles %v", s.Name, roles)
		}
		if s.Stats["heartbeats_sent"] < 4 || s.HeartbeatMS != 1000 || s.MissLimit != 3 {
			t.Fatalf("%s: stats %v, timings %v %v", s.Name, s.Stats, s.HeartbeatMS, s.MissLimit)
		}
	}
	var sawRole bool
	for _, line := range b.lines() {
		sawRole = sawRole || (line.Kind == "role" && line.Role == "WORKER1" && line.Old == "JOINING")
	}
	if !sawRole {
		t.Fatalf("no role event on pico3's console: %+v", b.console)
	}

	b.p.Opened(l.now, 1, control.Port)
	r := b.do(1, `{"action": "get_state"}`)
	raw, _ := json.Marshal(r["state"])
	var s firmware.State
	if err := json.Unmarshal(raw, &s); err != nil || s.Role != "WORKER1" || s.Master != "pico2" || s.LED != "active" {
		t.Fatalf("get_state: %v %+v", err, s)
	}
	if acts := b.do(1, `{"action": "list_actions"}`)["actions"].([]any); fmt.Sprint(acts[len(acts)-3:]) != "[get_state start_app stop_app]" {
		t.Fatalf("list_actions: %v", acts)
	}

	a.p = nil // the master loses power
	l.run(5 * time.Second)
	if s := c.state(); s.Master != "pico3" || len(s.Members) != 2 {
		t.Fatalf("after the master died: %+v", s)
	}
}

func TestAWrittenPinRevertsAndTheStateShowsWhy(t *testing.T) {
	l := &lan{t: t}
	f := l.add(2, nil)
	f.p.Opened(l.now, 7, control.Port)
	f.do(7, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
	f.do(7, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 2}`)
	if f.pins[2] != 1 {
		t.Fatal("the pin was not driven")
	}
	f.p.Closed(l.now, 7) // the controller vanishes
	l.run(2100 * time.Millisecond)
	if f.pins[2] != 0 {
		t.Fatal("the pin did not revert")
	}
	evs := f.state().PinEvents
	last := evs[len(evs)-1]
	if last.Cause != "revert" || last.Pin != 2 || last.Value != 0 || last.MS != 2000 {
		t.Fatalf("pin events %+v", evs)
	}
	f.inputs[5] = 1
	f.p.Opened(l.now, 8, control.Port)
	f.do(8, `{"action": "setup_pin", "pin": 5, "mode": "input"}`)
	if r := f.do(8, `{"action": "read_pin", "pin": 5}`); r["value"] != 1.0 {
		t.Fatalf("input pin: %v", r)
	}
}

func TestACrashingUpdateRollsBackAndAGoodOneIsKept(t *testing.T) {
	l := &lan{t: t}
	f := l.add(2, nil)
	f.p.Opened(l.now, 1, control.Port)
	f.do(1, `{"action": "update", "files": {"main.py": "`+firmware.CrashMarker+`", "VERSION": "2.0.0", "extra.txt": "new"}}`)
	l.run(time.Second)
	h, ok := f.p.Halted()
	if !ok || h.Kind != control.ActUpdate || firmware.Version(f.flash) != "2.0.0" {
		t.Fatalf("halt %+v %v, version %s", h, ok, firmware.Version(f.flash))
	}
	start := l.now
	f.boot()
	if got := firmware.Version(f.flash); got != control.Version {
		t.Fatalf("version after the crash: %s", got)
	}
	if _, ok := f.flash.ReadFile("extra.txt"); ok {
		t.Fatal("a file the failed update added survived the rollback")
	}
	if l.now-start != firmware.BootFailDelay || f.p.Incarnation() != 2 {
		t.Fatalf("rolled back after %v, incarnation %d", l.now-start, f.p.Incarnation())
	}
	var events []string
	for _, line := range f.lines() {
		if line.Kind != "" && line.Kind != "pin" {
			events = append(events, line.Kind)
		}
	}
	if got := strings.Join(events, " "); !strings.Contains(got, "update boot_fail rollback boot wifi_joined") {
		t.Fatalf("console events: %s", got)
	}

	f.p.Opened(l.now, 1, control.Port)
	f.do(1, `{"action": "update", "files": {"main.py": "print('v2')", "VERSION": "2.1.0"}}`)
	l.run(time.Second)
	f.boot()
	if got := f.state().Version; got != "2.1.0" {
		t.Fatalf("version after a good update: %s", got)
	}
	if ok, _ := firmware.Rollback(f.flash); ok {
		t.Fatal("a good image that booted can still be rolled back")
	}
}

func TestSettingsInFlashNameTheBoardAndSetItsTimingsAndPins(t *testing.T) {
	set := firmware.Settings{Name: "bench-a", Heartbeat: 250 * time.Millisecond, MissLimit: 4,
		Pins: []firmware.PinSetup{{Pin: 3, Output: true, Value: 1}, {Pin: 6}}}
	got, err := firmware.ParseSettings(set.JSON())
	if err != nil || got.Name != set.Name || got.Heartbeat != set.Heartbeat || got.MissLimit != 4 || len(got.Pins) != 2 || got.Pins[0] != set.Pins[0] {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	flash := firmware.MemFlash{firmware.FileSettings: set.JSON()}
	l := &lan{t: t}
	f := l.add(9, flash)
	s := f.state()
	if s.Name != "bench-a" || s.HeartbeatMS != 250 || s.MissLimit != 4 || len(s.Pins) != 2 || f.pins[3] != 1 {
		t.Fatalf("state %+v, pins %v", s, f.pins)
	}
	if _, err := firmware.ParseSettings([]byte(`{"pins": [{"pin": 2}]}`)); err == nil {
		t.Fatal("a pin without a mode was accepted")
	}
	bad := l.add(10, firmware.MemFlash{firmware.FileSettings: []byte("{nope")})
	if bad.state().Name != "pico10" {
		t.Fatal("a board with a bad settings file did not boot with its default name")
	}
}

func TestLightSleepLosesDatagramsAndACommandWakesTheBoard(t *testing.T) {
	l := &lan{t: t}
	f := l.add(2, nil)
	l.run(3 * time.Second)
	f.p.Opened(l.now, 1, control.Port)
	f.do(1, `{"action": "sleep", "time_ms": 60000, "deep": 0}`)
	l.run(1500 * time.Millisecond) // the sleep starts a second after the reply
	received := f.state().Stats["received"]
	if !f.state().Asleep {
		t.Fatal("not asleep")
	}
	f.p.Datagram(l.now, node.Port, node.Addr{10, 0, 0, 3}, node.Port, []byte{1, 1, 'x'})
	if r := f.do(1, `{"action": "ping"}`); r["error"] != nil {
		t.Fatalf("ping: %v", r)
	}
	if s := f.state(); s.Asleep || s.Stats["received"] != received {
		t.Fatalf("after the command: asleep %v, received %d (was %d)", s.Asleep, s.Stats["received"], received)
	}
}

func TestARevertDueInLightSleepWakesTheBoard(t *testing.T) {
	l := &lan{t: t}
	f := l.add(2, nil)
	l.run(3 * time.Second)
	f.p.Opened(l.now, 1, control.Port)
	f.do(1, `{"action": "setup_pin", "pin": 4, "mode": "output", "value": 0}`)
	f.do(1, `{"action": "write_pin", "pin": 4, "value": 1, "timeout": 5}`)
	written := l.now
	f.do(1, `{"action": "sleep", "time_ms": 60000, "deep": 0}`)
	l.run(2 * time.Second)
	if !f.state().Asleep || f.pins[4] != 1 {
		t.Fatalf("asleep %v, GPIO4 %d", f.state().Asleep, f.pins[4])
	}
	l.run(written + 5*time.Second - l.now)
	if f.pins[4] != 0 {
		t.Fatal("the revert did not happen in light sleep")
	}
	if f.state().Asleep {
		t.Fatal("the board did not wake for the revert")
	}
	var wake *firmware.Line
	for i, l := range f.lines() {
		if l.Kind == firmware.EvWake {
			wake = &f.console[i]
		}
	}
	if wake == nil || wake.MS != (written+5*time.Second).Milliseconds() || !strings.Contains(wake.Detail, "revert") {
		t.Fatalf("wake event %+v", wake)
	}
}

func TestSubnetBroadcastSetsTheHostBits(t *testing.T) {
	for _, c := range []struct {
		ip   node.Addr
		bits int
		want node.Addr
	}{
		{node.Addr{192, 168, 1, 23}, 24, node.Addr{192, 168, 1, 255}},
		{node.Addr{10, 0, 17, 4}, 20, node.Addr{10, 0, 31, 255}},
		{node.Addr{172, 16, 0, 9}, 32, node.Addr{172, 16, 0, 9}},
		{node.Addr{10, 1, 2, 3}, 0, node.Addr{255, 255, 255, 255}},
	} {
		if got := firmware.SubnetBroadcast(c.ip, c.bits); got != c.want {
			t.Errorf("SubnetBroadcast(%v, %d) = %v, want %v", c.ip, c.bits, got, c.want)
		}
	}
}

// TestAFreshBoardBootsWithANameAndTheBuildsNetwork: a Pico W fresh from
// the factory has no settings; its adapter names it from the chip's unique
// ID, and a board with no name at all is still called something, since the
// radio's DHCP client refuses an empty hostname (the board would reset
// forever). The build's WiFi credentials format the blank flash.
func TestAFreshBoardBootsWithANameAndTheBuildsNetwork(t *testing.T) {
	if got := firmware.DefaultName([]byte{0xe6, 0x60, 0x38, 0xb7, 0x13, 0x2a, 0x9f, 0x31}); got != "pico-2a9f31" {
		t.Fatalf("DefaultName = %q", got)
	}
	for _, opt := range []firmware.Options{
		{Name: firmware.DefaultName([]byte{1, 2, 3}), WLAN: firmware.WLAN{SSID: "lab", Password: "pw"}},
		{},
	} {
		flash := firmware.MemFlash{}
		f := &fake{lan: &lan{t: t}, flash: flash, pins: map[int]int{}, replies: map[control.ConnID][]string{}}
		p, err := firmware.Boot(f, flash, opt, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "pico-010203", false: "pico"}[opt.Name != ""]
		if p.Name() != want || f.state().Name != want {
			t.Fatalf("a fresh board with %+v is called %q", opt, p.Name())
		}
		w := p.WLAN()
		if opt.WLAN.SSID != "" && (w.SSID != "lab" || w.Password != "pw" || w.Port != control.Port) {
			t.Fatalf("the build's network: %+v", w)
		}
		if opt.WLAN.SSID == "" && w.SSID != "picosim" {
			t.Fatalf("the default network: %+v", w)
		}
	}
}

func TestHeartbeatsGoToTheSubnetsBroadcast(t *testing.T) {
	ip := node.Addr{192, 168, 4, 17}
	for _, c := range []struct {
		bits    int
		offered node.Addr
		want    node.Addr
	}{
		{24, node.Addr{}, node.Addr{192, 168, 4, 255}},
		{24, node.Addr{192, 168, 4, 127}, node.Addr{192, 168, 4, 255}}, // the subnet rules
		{0, node.Addr{192, 168, 4, 255}, node.Addr{192, 168, 4, 255}},
		{0, node.Addr{}, firmware.LimitedBroadcast},
		{32, node.Addr{}, firmware.LimitedBroadcast},
	} {
		if got := firmware.HeartbeatAddr(ip, c.bits, c.offered); got != c.want {
			t.Errorf("HeartbeatAddr(/%d, offered %v) = %v, want %v", c.bits, c.offered, got, c.want)
		}
	}
}

// TestInflateIsBounded: piconetcontrol's client compresses updates; a
// small compressed file must not inflate into a board's whole heap.
func TestInflateIsBounded(t *testing.T) {
	for _, c := range []struct {
		size int
		ok   bool
	}{{1000, true}, {firmware.MaxInflated, true}, {firmware.MaxInflated + 1, false}, {10 << 20, false}} {
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(bytes.Repeat([]byte("a"), c.size))
		w.Close()
		out, err := firmware.Inflate(z.Bytes())
		if c.ok != (err == nil) || (c.ok && len(out) != c.size) {
			t.Errorf("%d bytes from %d compressed: %d out, %v", c.size, z.Len(), len(out), err)
		}
		if !c.ok && !errors.Is(err, firmware.ErrTooLarge) {
			t.Errorf("%d bytes: %v, want ErrTooLarge", c.size, err)
		}
	}
	var raw bytes.Buffer
	fw, _ := flate.NewWriter(&raw, flate.BestSpeed)
	fw.Write([]byte("print('hi')"))
	fw.Close()
	if out, err := firmware.Inflate(raw.Bytes()); err != nil || string(out) != "print('hi')" {
		t.Fatalf("raw deflate: %q %v", out, err)
	}
}

// TestStartAppTakesOnlyWhatIsSafe: start_app names an app of node/apps,
// with settings in range; a flood of 1 ms messages is refused.
func TestStartAppTakesOnlyWhatIsSafe(t *testing.T) {
	l := &lan{t: t}
	f := l.add(2, nil)
	f.p.Opened(l.now, 1, control.Port)
	for _, cmd := range []string{
		`{"action": "start_app"}`,
		`{"action": "start_app", "app": "fork-bomb"}`,
		`{"action": "start_app", "app": "bus", "interval_ms": 1}`,
		`{"action": "start_app", "app": "echo-client"}`,
		`{"action": "start_app", "app": "rgb-client-naive", "server_ip": "300.1.2.3"}`,
		`{"action": "start_app", "app": "mirror", "source": "pico2", "target": "pico3", "source_pin": 99}`,
		`{"action": "stop_app", "app": "bus"}`,
	} {
		if r := f.do(1, cmd); r["error"] == nil {
			t.Errorf("%s was accepted: %v", cmd, r)
		}
	}
	if r := f.do(1, `{"action": "start_app", "app": "bus", "interval_ms": 500}`); r["error"] != nil {
		t.Fatalf("a good start_app: %v", r)
	}
	set, err := firmware.ReadSettings(f.flash)
	if err != nil || len(set.Apps) != 1 || set.Apps[0].App != "bus" || set.Apps[0].Interval != 500*time.Millisecond {
		t.Fatalf("the settings keep %+v (%v)", set.Apps, err)
	}
	f.boot() // it starts again at boot
	if apps := f.p.Apps(); len(apps) != 1 || apps[0].Spec.App != "bus" {
		t.Fatalf("after a reboot: %+v", apps)
	}
}

func TestAKeyInFlashKeysDiscoveryAndControlAndABadOneFailsClosed(t *testing.T) {
	key := []byte("sixteen+ byte key shared by all")
	keyed := func() firmware.MemFlash {
		return firmware.MemFlash{firmware.FileSettings: firmware.Settings{Key: key}.JSON()}
	}
	got, err := firmware.ParseSettings(firmware.Settings{Key: key}.JSON())
	if err != nil || string(got.Key) != string(key) || got.KeyError != "" {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	l := &lan{t: t}
	a, b := l.add(2, keyed()), l.add(3, keyed())
	open := l.add(4, nil) // no key: it cannot join them, nor they it
	l.run(5 * time.Second)
	if s := b.state(); s.Master != "pico2" || len(s.Members) != 2 || s.Stats["unauthenticated"] == 0 {
		t.Fatalf("keyed board: %+v", s)
	}
	if s := open.state(); len(s.Members) != 1 || s.Stats["malformed"] == 0 {
		t.Fatalf("keyless board: %+v", s)
	}
	a.p.Opened(l.now, 1, control.Port)
	if r := a.do(1, `{"action": "reset"}`); r["exception"] != "AuthError" {
		t.Fatalf("unsigned reset on a keyed board: %v", r)
	}
	nonce := a.do(1, `{"action": "get_nonce"}`)["nonce"].(string)
	if !strings.HasPrefix(nonce, "pico2-1-") {
		t.Fatalf("nonce %q does not name the board and its boot", nonce)
	}
	line, _ := control.Sign(key, nonce, 1, `{"action": "get_version"}`)
	if r := a.do(1, line); r["version"] == nil {
		t.Fatalf("signed get_version: %v", r)
	}

	// A key that cannot be read (too short): the board boots, says why,
	// joins nobody and refuses every command.
	for _, raw := range []string{`{"key": "abcd"}`, `{"key": "not hex at all, not hex at all!"}`, `{"key": 42}`} {
		bad := l.add(byte(10+len(l.boards)), firmware.MemFlash{firmware.FileSettings: []byte(raw)})
		l.run(3 * time.Second)
		s := bad.state()
		if s.Joined || len(s.Members) != 0 {
			t.Fatalf("%s: a board with a bad key took part in discovery: %+v", raw, s)
		}
		bad.p.Opened(l.now, 1, control.Port)
		if r := bad.do(1, `{"action": "ping"}`); r["exception"] != "AuthError" {
			t.Fatalf("%s: ping on a board with a bad key: %v", raw, r)
		}
		var said bool
		for _, line := range bad.lines() {
			said = said || (line.Kind == firmware.EvConfigError && strings.Contains(line.Detail, "key"))
		}
		if !said {
			t.Fatalf("%s: no config_error about the key", raw)
		}
	}
}

func TestANonceNeverComesBackWhenTheBootCounterDoes(t *testing.T) {
	// A re-flashed board (or picosim up run again) counts its boots from 1
	// again: the boot's entropy keeps its nonces new, so a signed command
	// recorded before does not run after.
	key := []byte("sixteen+ byte key shared by all")
	boot := func(entropy uint64) (*fake, string) {
		l := &lan{t: t}
		f := &fake{lan: l, ip: node.Addr{10, 0, 0, 2}, flash: firmware.MemFlash{firmware.FileSettings: firmware.Settings{Key: key}.JSON()},
			pins: map[int]int{}, inputs: map[int]int{}, replies: map[control.ConnID][]string{}}
		l.boards = append(l.boards, f)
		p, _, err := firmware.Start(f, f.flash, firmware.Options{Name: "pico2", Entropy: func() uint64 { return entropy }}, 0)
		if err != nil || p == nil {
			t.Fatal(err)
		}
		f.p = p
		f.p.Opened(0, 1, control.Port)
		return f, f.do(1, `{"action": "get_nonce"}`)["nonce"].(string)
	}
	first, n1 := boot(0x1234)
	recorded, _ := control.Sign(key, n1, 1, `{"action": "setup_pin", "pin": 5, "mode": "output", "value": 1}`)
	if r := first.do(1, recorded); r["error"] != nil {
		t.Fatalf("the signed command failed where it was signed: %v", r)
	}
	again, n2 := boot(0xbeef)
	if n1 == n2 || !strings.Contains(n2, "000000000000beef") {
		t.Fatalf("nonces %q then %q", n1, n2)
	}
	if r := again.do(1, recorded); r["exception"] != "AuthError" {
		t.Fatalf("a command recorded in the earlier boot ran: %v", r)
	}
}

// The version a board reports follows the server_base.py an update gives
// it, as the real server's _VERSION does (its client's update_server checks
// it), and comes back with a rollback; without one, the VERSION file.
func TestTheVersionFollowsTheServerBaseAnUpdateInstalls(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"class Server:\n    _VERSION = \"1.13.1\"\n", "1.13.1"},
		{"import x\nVERSION = \"2.0\"  # top level\n", "2.0"},
		{"_VERSION = \"0.1\"\n", ""}, // the first line: nothing before it for \s+
		{"class S:\n    VERSION_MAJOR = \"3\"\n", ""},
		{"class S:\n    _VERSION = \"1.2\"\n    _VERSION = \"9.9\"\n", "1.2"},
	} {
		f := firmware.MemFlash{}
		firmware.Format(f)
		f.WriteFile(firmware.FileServerBase, []byte(c.src))
		want := c.want
		if want == "" {
			want = firmware.Version(firmware.MemFlash{firmware.FileVersion: []byte("1.13.0")})
		}
		if got := firmware.Version(f); got != want {
			t.Errorf("%q: version %q, want %q", c.src, got, want)
		}
	}
	if src, err := os.ReadFile("../../shared/clients/piconetcontrol-0.3.0/piconetcontrol/server/server_base.py"); err == nil {
		f := firmware.MemFlash{}
		firmware.Format(f)
		before := firmware.Version(f)
		if err := firmware.Install(f, []control.File{{Name: firmware.FileServerBase, Content: src}}); err != nil {
			t.Fatal(err)
		}
		if got := firmware.Version(f); got != "1.13.1" {
			t.Fatalf("after piconetcontrol 0.3.0's server_base.py: %q, want 1.13.1", got)
		}
		if ok, err := firmware.Rollback(f); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if got := firmware.Version(f); got != before {
			t.Fatalf("after the rollback: %q, want %q", got, before)
		}
	}
}

// An update leaves what piconetcontrol's server leaves in flash: update.txt
// naming its files, a "_" backup of each file it replaced; a rollback puts
// them back, removes what the update added, and says so in logs.txt.
func TestAnUpdateKeepsTheRealServersFiles(t *testing.T) {
	f := firmware.MemFlash{}
	firmware.Format(f)
	oldMain, _ := f.ReadFile(firmware.FileMain)
	files := []control.File{{Name: firmware.FileMain, Content: []byte("print('v2')\n")}, {Name: "server_pico.py", Content: []byte("# new\n")}}
	if err := firmware.Install(f, files); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.ReadFile(firmware.FileUpdate); string(u) != "main.py,server_pico.py" {
		t.Fatalf("update.txt %q", u)
	}
	if b, ok := f.ReadFile("_main.py"); !ok || string(b) != string(oldMain) {
		t.Fatalf("_main.py %q %v", b, ok)
	}
	if _, ok := f.ReadFile("_server_pico.py"); ok {
		t.Fatal("a backup of a file that did not exist")
	}
	if ok, err := firmware.Rollback(f); !ok || err != nil {
		t.Fatal(ok, err)
	}
	m, _ := f.ReadFile(firmware.FileMain)
	_, added := f.ReadFile("server_pico.py")
	_, upd := f.ReadFile(firmware.FileUpdate)
	_, bak := f.ReadFile("_main.py")
	logs, _ := f.ReadFile(firmware.FileLogs)
	if string(m) != string(oldMain) || added || upd || bak || string(logs) != "update failed, attempting rollback...rollback successful... resetting" {
		t.Fatalf("after the rollback: main %q, added file kept %v, update.txt %v, backup %v, logs %q", m, added, upd, bak, logs)
	}
	if err := firmware.Install(f, []control.File{{Name: "_x.py"}}); err == nil {
		t.Fatal("an update may not write a backup's name")
	}
	if err := firmware.Install(f, files); err != nil {
		t.Fatal(err)
	}
	if err := firmware.Confirm(f); err != nil {
		t.Fatal(err)
	}
	_, upd = f.ReadFile(firmware.FileUpdate)
	_, bak = f.ReadFile("_main.py")
	if upd || bak {
		t.Fatalf("a confirmed update left update.txt %v, _main.py %v", upd, bak)
	}
}
