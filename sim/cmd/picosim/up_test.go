package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/sim"
)

// upCluster runs a forwarded cluster in paced time, 20 simulated seconds per
// wall second, on free ports.
func upCluster(t *testing.T) (*sim.Cluster, *sim.Forwarder) {
	t.Helper()
	c, err := sim.New(sim.Config{Boards: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Forward(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.RunPaced(ctx, 20); close(done) }()
	t.Cleanup(func() { cancel(); <-done; f.Close(); c.Close() })
	return c, f
}

// A client written from the protocol description alone: newline-ended JSON
// over plain TCP.
func TestAPlainTCPClientDrivesAForwardedBoard(t *testing.T) {
	_, f := upCluster(t)
	conn, err := net.DialTimeout("tcp", f.Mappings[1].From, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	ask := func(cmd string) map[string]any {
		t.Helper()
		if _, err := conn.Write([]byte(cmd + "\n")); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		return m
	}
	ask(`{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
	ask(`{"action": "write_pin", "pin": 2, "value": 1, "timeout": 5}`)
	if v := ask(`{"action": "read_pin", "pin": 2}`)["value"]; v != 1.0 {
		t.Fatalf("read after write: %v", v)
	}
	// 5 simulated seconds are 250 ms of wall time at 20x: poll until the
	// revert shows, with a generous wall-clock bound.
	deadline := time.Now().Add(5 * time.Second)
	for ask(`{"action": "read_pin", "pin": 2}`)["value"] != 0.0 {
		if time.Now().After(deadline) {
			t.Fatal("the pin never reverted")
		}
	}
}

func TestCtlRunsTheDocumentedSequence(t *testing.T) {
	_, f := upCluster(t)
	addr := f.Mappings[2].From
	code, out, errOut := picosim(t, "ctl", addr,
		"-c", "action=setup_pin", "pin=2", "mode=output", "value=0",
		"-c", "action=read_pin", "pin=2",
		"-c", "action=write_pin", "pin=2", "value=1", "timeout=5",
		"-c", "action=read_pin", "pin=2")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"  ->  ok", "  ->  value=0", "  ->  ok", "  ->  value=1"}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Fatalf("line %d %q, want it to end with %q\n%s", i, lines[i], w, out)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, out, _ = picosim(t, "ctl", addr, "--json", "-c", "action=read_pin", "pin=2")
		if code == 0 && strings.Contains(out, `"value": 0}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never reverted: %s", out)
		}
	}
	if !strings.HasPrefix(out, `{"action": "read_pin", "pin": 2, "time_received": `) {
		t.Fatalf("--json line %q", out)
	}
}

func TestCtlReportsErrorsAndUsage(t *testing.T) {
	_, f := upCluster(t)
	code, out, _ := picosim(t, "ctl", f.Mappings[0].From, "-c", "action=read_pin", "pin=9")
	if code != 1 || !strings.Contains(out, "ERROR GPIOPinNotSetupError: pin 9 not setup") {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, args := range [][]string{{"ctl"}, {"ctl", "127.0.0.1:1"}, {"ctl", "127.0.0.1:1", "-c", "novalue"}, {"ctl", "127.0.0.1:1", "--bogus", "-c", "action=ping"}} {
		if code, _, _ := picosim(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := picosim(t, "ctl", "127.0.0.1:1", "--retries", "0", "-c", "action=ping"); code != 1 || !strings.Contains(errOut, "connect to 127.0.0.1:1") {
		t.Fatalf("unreachable board: exit %d %s", code, errOut)
	}
}
