package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/simtest"
)

// upCluster runs a forwarded cluster in paced time, 20 simulated seconds per
// wall second, on free ports: 3 boards, seed 1, unless cfg says otherwise.
func upCluster(t *testing.T, cfg sim.Config) (*sim.Cluster, *sim.Forwarder) {
	t.Helper()
	if cfg.Boards == 0 {
		cfg.Boards, cfg.Seed = 3, 1
	}
	c, err := sim.New(cfg)
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
	_, f := upCluster(t, sim.Config{})
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
	_, f := upCluster(t, sim.Config{})
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
	_, f := upCluster(t, sim.Config{})
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

// A keyed controller written in Python from the recipe in the README alone
// (hashlib's BLAKE2s), against a keyed forwarded cluster: its signed
// commands run, an unsigned one is refused, a replayed one too.
func TestAPythonControllerSignsWithHashlib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	key := []byte("a key the python client shares!!")
	_, f := upCluster(t, sim.Config{Boards: 2, Seed: 1, Settings: firmware.Settings{Key: key}})
	script := `
import hashlib, json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
key = sys.argv[2].encode()
s = socket.create_connection((host, int(port)), timeout=10)
r = s.makefile()
def send(obj):
    s.sendall((json.dumps(obj) + "\n").encode())
    return json.loads(r.readline())
nonce = send({"action": "get_nonce"})["nonce"]
def signed(seq, cmd):
    text = json.dumps(cmd)
    mac = hashlib.blake2s(("C\n" + nonce + "\n" + str(seq) + "\n" + text).encode(), key=key, digest_size=16).hexdigest()
    return {"seq": seq, "command": text, "mac": mac}
print(json.dumps(send(signed(1, {"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}))))
print(json.dumps(send(signed(2, {"action": "read_pin", "pin": 2}))))
print(json.dumps(send({"action": "reset"})))
print(json.dumps(send(signed(2, {"action": "reset"}))))
`
	out, err := exec.Command(py, "-c", script, f.Mappings[0].From, string(key)).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 {
		t.Fatalf("python printed:\n%s", out)
	}
	var r [4]map[string]any
	for i, l := range lines {
		json.Unmarshal([]byte(l), &r[i])
	}
	if r[0]["error"] != nil || r[0]["action"] != "setup_pin" || r[1]["value"] != 0.0 {
		t.Errorf("signed commands: %s / %s", lines[0], lines[1])
	}
	if r[2]["exception"] != "AuthError" || r[3]["exception"] != "AuthError" {
		t.Errorf("unsigned and replayed: %s / %s", lines[2], lines[3])
	}
}

// rss is a process's resident memory, in bytes, from /proc.
func rss(pid int) int64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	var size, res int64
	fmt.Sscan(string(raw), &size, &res)
	return res * int64(os.Getpagesize())
}

// TestUpSurvivesHostileClientsAndStopsOnCtrlC runs picosim up as a user
// does and attacks its forwarded ports from the host: a client that
// pipelines pings and reads nothing (4 KiB receive buffer), and 64 MiB
// without a newline. The other boards keep answering, memory stays bounded,
// and SIGINT ends the process within its one-second promise.
func TestUpSurvivesHostileClientsAndStopsOnCtrlC(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "picosim")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Port 0: every board on a free port of its own, read from the
	// mapping up prints (a base port + i could be taken by then).
	cmd := exec.Command(exe, "up", "--nodes", "3", "--quiet", "--forward", "127.0.0.1:0")
	out := &simtest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "Ctrl-C to stop"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("up did not start:\n%s", out)
		}
	}
	var ports []string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[2] == "<-" {
			ports = append(ports, f[3])
		}
	}
	if len(ports) != 3 {
		t.Fatalf("no port mapping for 3 boards:\n%s", out)
	}
	addr := func(i int) string { return ports[i] }
	ping := func(i int) error {
		c, err := net.DialTimeout("tcp", addr(i), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte(`{"action": "ping"}` + "\n"))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && !strings.Contains(line, "time_received") {
			err = fmt.Errorf("reply %q", line)
		}
		return err
	}
	// The boards join WiFi first (1.5 to 4 s on the Pico W radio).
	for i := range 3 {
		for deadline := time.Now().Add(20 * time.Second); ping(i) != nil; {
			if time.Now().After(deadline) {
				t.Fatalf("board %d never answered:\n%s", i, out)
			}
		}
	}

	// The non-reader, on board 0.
	nr, err := net.Dial("tcp", addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer nr.Close()
	nr.(*net.TCPConn).SetReadBuffer(4096)
	stop := make(chan struct{})
	defer close(stop)
	// What the non-reader managed, for the failure message: a rare hang
	// (see the issue 15/16 note) left no trace of which side stalled.
	var written atomic.Int64
	var ended atomic.Value
	go func() {
		pings := []byte(strings.Repeat(`{"action": "ping"}`+"\n", 100))
		for {
			select {
			case <-stop:
				return
			default:
			}
			nr.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := nr.Write(pings)
			written.Add(int64(n))
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				ended.Store(err.Error())
				return // closed: cut off
			}
		}
	}()
	// 16 MiB without a newline (two thousand times the longest line a
	// board reads), on board 2. Each byte crosses gVisor's TCP in up's one
	// event loop at real time: 64 MiB left too little of it for the pings
	// on a machine busy with the rest of make test.
	go func() {
		c, err := net.Dial("tcp", addr(2))
		if err != nil {
			return
		}
		defer c.Close()
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for i := 0; i < 256; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	// Board 1 keeps answering, every time, until the forwarder has closed
	// the non-reader (once 256 KiB of replies wait for it, behind what the
	// kernel's socket buffers hold: 5 to 10 s here alone, longer beside the
	// rest of make test).
	var peak int64
	for end := time.Now().Add(3 * time.Minute); !strings.Contains(out.String(), "read nothing"); {
		if time.Now().After(end) {
			t.Fatalf("the non-reader was never closed (it wrote %d bytes; its writes ended with %v):\n%s", written.Load(), ended.Load(), out)
		}
		if err := ping(1); err != nil {
			t.Fatalf("board 1 did not answer under attack: %v\n%s", err, out)
		}
		peak = max(peak, rss(cmd.Process.Pid))
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("peak RSS under attack: %.1f MiB", float64(peak)/(1<<20))
	if peak > 100<<20 {
		t.Errorf("picosim up grew to %.0f MiB under attack", float64(peak)/(1<<20))
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		t.Logf("stopped %v after SIGINT", time.Since(sent).Round(time.Millisecond))
		if err != nil {
			t.Errorf("exit: %v\n%s", err, out)
		}
	case <-time.After(2 * time.Second): // the promise is one second; the watchdog exits at it
		t.Fatalf("up still running 2s after SIGINT\n%s", out)
	}
}
