package rp2040_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/sim/rp2040"
)

// paths finds the runner, the image and the boot ROM, or skips saying what
// is missing (make rp2040 and make firmware provide them).
func paths(t testing.TB) rp2040.Paths {
	t.Helper()
	if os.Getenv("PICOSIM_RP2040") == "" {
		t.Skip("the shipped image on emulated RP2040s runs with PICOSIM_RP2040=1 (make rp2040)")
	}
	p, err := rp2040.Find("../..")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newBoards makes a LAN of the seed and a fleet of n emulated boards on it,
// pico1 to picoN (their settings name them), powered off; closeAll powers
// them off and ends the LAN.
func newBoards(t testing.TB, seed uint64, n int) (*netsim.LAN, *rp2040.Fleet, []*rp2040.Board, func()) {
	t.Helper()
	p := paths(t)
	lan, err := netsim.New(netsim.Config{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	f := rp2040.NewFleet(lan, p, t.TempDir())
	var boards []*rp2040.Board
	for i := range n {
		name := fmt.Sprintf("pico%d", i+1)
		b, err := f.Add(name, nil, map[string][]byte{firmware.FileSettings: firmware.Settings{Name: name}.JSON()})
		if err != nil {
			lan.Close()
			t.Fatal(err)
		}
		boards = append(boards, b)
	}
	return lan, f, boards, func() { f.Close(); lan.Close() }
}

// powerOn boots the boards, once the fleet's callbacks are set.
func powerOn(t testing.TB, f *rp2040.Fleet, boards []*rp2040.Board) {
	t.Helper()
	for _, b := range boards {
		if err := f.PowerOn(b); err != nil {
			t.Fatal(err)
		}
	}
}

// run boots n emulated boards on one LAN and returns their events, by
// board, until done says so or the LAN's clock reaches limit.
func run(t testing.TB, n int, limit time.Duration, done func(map[string][]firmware.Event) bool) (map[string][]firmware.Event, []string, time.Duration) {
	t.Helper()
	lan, f, boards, closeAll := newBoards(t, 1, n)
	defer closeAll()
	events := map[string][]firmware.Event{}
	var timeline []string
	f.OnConsole = func(b *rp2040.Board, at time.Duration, text string) {
		var l firmware.Line
		if json.Unmarshal([]byte(text), &l) != nil {
			return // the driver's own log
		}
		if l.State != nil && l.State.Name != b.Name {
			t.Errorf("%s calls itself %q: the factory's settings did not reach it", b.Name, l.State.Name)
		}
		if l.Kind == "" {
			return
		}
		l.Event.At = at
		events[b.Name] = append(events[b.Name], l.Event)
		timeline = append(timeline, fmt.Sprintf("%.6f %s %s %s %s %s", at.Seconds(), b.Name, l.Kind, l.Role, l.Member, l.Detail))
	}
	f.Log = func(s string) { t.Log(s) }
	powerOn(t, f, boards)
	start := time.Now()
	lan.Clock().RunUntil(limit, func() bool { return done(events) || f.Err() != nil })
	wall := time.Since(start)
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d boards: %.1f s simulated in %.1f s wall (%.2f simulated s a wall s)", n, lan.Clock().Now().Seconds(), wall.Seconds(), lan.Clock().Now().Seconds()/wall.Seconds())
	return events, timeline, lan.Clock().Now()
}

func roles(events map[string][]firmware.Event) map[string]string {
	r := map[string]string{}
	for b, es := range events {
		for _, e := range es {
			if e.Kind == firmware.EvRole {
				r[b] = e.Role
			}
		}
	}
	return r
}

// Three boards running the UF2 that ships join the LAN through their
// modelled radios, get addresses by DHCP, and elect one master.
func TestTheShippedImageFormsACluster(t *testing.T) {
	agreed := func(ev map[string][]firmware.Event) bool {
		r := roles(ev)
		var got []string
		for _, v := range r {
			got = append(got, v)
		}
		slices.Sort(got)
		return strings.Join(got, " ") == "MASTER WORKER1 WORKER2"
	}
	ev, timeline, _ := run(t, 3, 60*time.Second, agreed)
	if !agreed(ev) {
		t.Fatalf("no cluster: roles %v\n%s", roles(ev), strings.Join(timeline, "\n"))
	}
	t.Logf("roles %v", roles(ev))
}

// A controller on the LAN talks to the shipped image's control server:
// pings, one connection after another, and two at once (the image keeps
// two connections for controllers).
func TestControllersReachTheShippedImage(t *testing.T) {
	p := paths(t)
	lan, err := netsim.New(netsim.Config{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer lan.Close()
	f := rp2040.NewFleet(lan, p, t.TempDir())
	var logs []string
	f.OnConsole = func(b *rp2040.Board, at time.Duration, text string) {
		logs = append(logs, fmt.Sprintf("%.3f %s", at.Seconds(), text))
	}
	b, err := f.Add("pico1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	laptop, _ := lan.AddHost(netsim.HostConfig{Name: "laptop"})
	phone, _ := lan.AddHost(netsim.HostConfig{Name: "phone"})
	if err := f.PowerOn(b); err != nil {
		t.Fatal(err)
	}
	clk := lan.Clock()
	clk.RunUntil(10*time.Second, func() bool {
		return slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, "wifi_joined") })
	})

	// ping opens a connection from h, sends one ping and returns the reply
	// line, leaving the connection open until close is called.
	ping := func(h *netsim.Host) (reply string, close func()) {
		t.Helper()
		var conn *netsim.TCPConn
		var got []byte
		var dialErr error
		done := false
		h.DialTCP(netip.AddrPortFrom(b.Host().IP(), control.Port), func(c *netsim.TCPConn, err error) {
			if err != nil {
				dialErr, done = err, true
				return
			}
			conn = c
			c.OnData = func(p []byte) { got = append(got, p...) }
			c.Write([]byte(`{"action": "ping"}` + "\n"))
		})
		clk.RunUntil(clk.Now()+10*time.Second, func() bool { return done || bytes.IndexByte(got, '\n') >= 0 })
		if dialErr != nil || bytes.IndexByte(got, '\n') < 0 {
			t.Fatalf("%s: no reply to ping (%v); the board said:\n%s", h.Name(), dialErr, strings.Join(logs[max(0, len(logs)-20):], "\n"))
		}
		return string(got[:bytes.IndexByte(got, '\n')]), func() { conn.Close(); clk.Run(clk.Now() + 100*time.Millisecond) }
	}
	for i := range 3 { // one after another: each connection's slot listens again
		r, closeIt := ping(laptop)
		if !strings.Contains(r, "time_received") {
			t.Fatalf("ping %d: %s", i+1, r)
		}
		// The image asked the router's NTP server for the time at its join
		// (netsim's answers with the simulated wall clock): time_received
		// is that clock, not the board's uptime.
		var reply struct {
			TimeReceived int64 `json:"time_received"`
		}
		json.Unmarshal([]byte(r), &reply)
		if d := time.Duration(reply.TimeReceived - netsim.Epoch.Add(clk.Now()).UnixNano()); d < -time.Second || d > time.Second {
			t.Fatalf("ping %d: time_received %d is %v off the LAN's wall clock %v", i+1, reply.TimeReceived, d, netsim.Epoch.Add(clk.Now()))
		}
		closeIt()
	}
	r1, close1 := ping(laptop) // two at once
	r2, close2 := ping(phone)
	if !strings.Contains(r1, "time_received") || !strings.Contains(r2, "time_received") {
		t.Fatalf("two controllers: %s / %s", r1, r2)
	}
	close1()
	close2()
	for _, l := range logs {
		if strings.Contains(l, "listen:") {
			t.Fatalf("the board could not listen: %s", l)
		}
	}
}

// Two runs of one seed give the same timeline, to the nanosecond: the
// boards run in lockstep with the LAN's clock, whatever the machine does.
func TestRunsAreReplayable(t *testing.T) {
	twoRoles := func(ev map[string][]firmware.Event) bool {
		return len(roles(ev)) == 2 && roles(ev)["pico1"] != "JOINING"
	}
	_, first, _ := run(t, 2, 8*time.Second, twoRoles)
	_, second, _ := run(t, 2, 8*time.Second, twoRoles)
	if len(first) < 5 || strings.Join(first, "\n") != strings.Join(second, "\n") {
		t.Fatalf("two runs differ:\n%s\n---\n%s", strings.Join(first, "\n"), strings.Join(second, "\n"))
	}
	t.Logf("%d events, identical", len(first))
}

// BenchmarkShippedImage runs 1 and 3 emulated boards for 20 simulated
// seconds (boot, WiFi, DHCP, the election, then discovery at rest) and
// reports simulated seconds per wall second, and the wall seconds to the
// cluster's agreement (make rp2040-bench).
func BenchmarkShippedImage(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("boards=%d", n), func(b *testing.B) {
			for range b.N {
				var agreedAt time.Duration
				start := time.Now()
				_, _, end := run(b, n, 20*time.Second, func(ev map[string][]firmware.Event) bool {
					if agreedAt == 0 && len(roles(ev)) == n && !slices.Contains(slices.Collect(maps.Values(roles(ev))), "JOINING") {
						agreedAt = time.Since(start)
					}
					return false
				})
				wall := time.Since(start)
				b.ReportMetric(end.Seconds()/wall.Seconds(), "sim-s/wall-s")
				b.ReportMetric(agreedAt.Seconds(), "wall-s-to-agree")
			}
		})
	}
}

// A runner killed mid-run (kill -9) darkens its board, says why, and leaves
// the others running: they see it leave.
func TestAKilledRunnerDarkensOnlyItsBoard(t *testing.T) {
	lan, f, boards, closeAll := newBoards(t, 3, 2)
	defer closeAll()
	var left []string
	var down error
	f.OnConsole = func(b *rp2040.Board, at time.Duration, text string) {
		var l firmware.Line
		if json.Unmarshal([]byte(text), &l) == nil && l.Kind == firmware.EvLeft {
			left = append(left, b.Name+" sees "+l.Member+" leave")
		}
	}
	f.OnDown = func(b *rp2040.Board, err error) { down = fmt.Errorf("%s: %w", b.Name, err) }
	powerOn(t, f, boards)
	clk := lan.Clock()
	clk.RunUntil(6*time.Second, nil)
	if err := syscall.Kill(boards[0].PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	clk.RunUntil(clk.Now()+10*time.Second, func() bool { return len(left) > 0 })
	if down == nil || !strings.Contains(down.Error(), "pico1") || boards[0].Err() == nil {
		t.Fatalf("no word of pico1's runner: %v", down)
	}
	if len(left) == 0 || left[0] != "pico2 sees pico1 leave" {
		t.Fatalf("pico2 did not go on: %v (pico2's runner: %v)", left, boards[1].Err())
	}
	t.Logf("%v; %s", down, left[0])
}
