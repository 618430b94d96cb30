package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/firmware/host"
	"github.com/picosim/picosim/internal/tlscert"
	"github.com/picosim/picosim/sim"
)

// piconetcontrol is the real client, unchanged (../shared/clients).
const piconetcontrol = "../../../../shared/clients/piconetcontrol-0.3.0"

// realClientCluster runs two boards as picosim up does (real time, the
// boards' clocks from the wall clock), forwarded to the host, TLS on the
// host's side if tlsConfig is set, and waits until board 0 answers.
func realClientCluster(t *testing.T, tlsConfig *tls.Config) (host, port string) {
	t.Helper()
	c, err := sim.New(sim.Config{Boards: 2, Seed: 1, Epoch: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.ForwardTLS(netip.MustParseAddrPort("127.0.0.1:0"), tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.RunPaced(ctx, 1); close(done) }()
	t.Cleanup(func() { cancel(); <-done; f.Close(); c.Close() })
	if !pingsWithin(f.Mappings[0].From, tlsConfig != nil, 20*time.Second) {
		t.Fatal("the forwarded board never answered a ping")
	}
	host, port, _ = net.SplitHostPort(f.Mappings[0].From)
	return host, port
}

// realClient runs python3 in the client's folder, failing the test on an
// error exit.
func realClient(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := os.Stat(piconetcontrol); err != nil {
		t.Skip("piconetcontrol 0.3.0 is not beside the project (../shared/clients): " + err.Error())
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3: " + err.Error())
	}
	cmd := exec.Command(py, args...)
	cmd.Dir = piconetcontrol
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1") // the client's folder is not ours to write
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The real client with its defaults speaks TLS: against picosim up --tls
// (a pair made as gen_ssl.sh makes it) its ping and its send_ping work.
func TestTheRealClientsDefaultTLS(t *testing.T) {
	realClient(t, "-c", "pass") // skips where the client or python3 is missing
	host, port := realClientCluster(t, newServerTLS(t))
	// Without a command it pings and prints send_ping's statistics.
	if out := realClient(t, "run_client.py", host, port); !strings.Contains(out, `"rtt"`) || !strings.Contains(out, `"error": false`) {
		t.Fatalf("run_client.py with its defaults (TLS):\n%s", out)
	} else {
		t.Logf("run_client.py %s %s (TLS): %s", host, port, strings.Join(strings.Fields(lastLines(out, 5)), " "))
	}
	out := realClient(t, "-c", "import json\nfrom piconetcontrol.client import Client\nr = Client('"+host+"', "+port+").send_ping()\nprint(json.dumps(r))")
	var ping struct {
		RTT, Tsend float64
		Error      bool
	}
	if err := json.Unmarshal([]byte(out), &ping); err != nil || ping.Error || ping.RTT <= 0 || math.Abs(ping.Tsend) > 1 {
		t.Fatalf("send_ping over TLS: %s", out)
	}
	t.Logf("send_ping over TLS: rtt %.4f s, tsend %.4f s", ping.RTT, ping.Tsend)
}

// The real piconetcontrol 0.3.0 client, run as its users run it, against
// boards of picosim up (simulated in real time, forwarded to the host):
// seed 002's CLI example, send_ping, the pin flow and its revert, the
// informational actions, update_server() to the end, and an update whose
// code fails to boot rolling back — each judged by the client's own output.
func TestTheRealPiconetcontrolClient(t *testing.T) {
	realClient(t, "-c", "pass") // skips where the client or python3 is missing
	t.Run("up --forward", func(t *testing.T) {
		t.Parallel() // each on ports of its own; mostly waiting on the client's sleeps
		host, port := realClientCluster(t, nil)
		realClientFlow(t, host, port, false)
	})
	t.Run("emulated board", func(t *testing.T) {
		t.Parallel() // each on ports of its own; mostly waiting on the client's sleeps
		host, port := hostBoard(t, false)
		realClientFlow(t, host, port, false)
	})
	t.Run("emulated board, TLS", func(t *testing.T) {
		t.Parallel() // each on ports of its own; mostly waiting on the client's sleeps
		host, port := hostBoard(t, true)
		realClientFlow(t, host, port, true)
	})
}

// hostBoard runs the firmware built for Linux (an emulated board) on the
// loopback interface, with the real server's certificate and key in its
// flash when useTLS, and waits until it answers a ping.
func hostBoard(t *testing.T, useTLS bool) (string, string) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dir := t.TempDir()
	flash := host.DirFlash(dir)
	os.MkdirAll(filepath.Join(dir, "config"), 0o755)
	flash.WriteFile(firmware.FileWLAN, firmware.WLAN{SSID: "lab", Password: "pw", Port: port}.JSON())
	if useTLS {
		certDER, keyDER, err := tlscert.Generate()
		if err != nil {
			t.Fatal(err)
		}
		flash.WriteFile(tlscert.CertFile, certDER)
		flash.WriteFile(tlscert.KeyFile, keyDER)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- host.Run(ctx, host.Config{Flash: dir, Name: "pico1", Iface: "lo", Console: io.Discard})
	}()
	t.Cleanup(func() { cancel(); <-done })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	if !pingsWithin(addr, useTLS, 10*time.Second) {
		t.Fatalf("the emulated board never answered a ping on %s", addr)
	}
	return "127.0.0.1", strconv.Itoa(int(port))
}

// pingsWithin pings addr (over TLS, not verifying the certificate, if
// useTLS) until a reply comes, for at most within; it says whether one did.
func pingsWithin(addr string, useTLS bool, within time.Duration) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue
		}
		if useTLS {
			conn = tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
		}
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		conn.Write([]byte(`{"action": "ping"}` + "\n"))
		b := make([]byte, 256)
		n, _ := conn.Read(b)
		conn.Close()
		if strings.Contains(string(b[:n]), "time_received") {
			return true
		}
	}
	return false
}

// realClientFlow runs the real client's flows against a board at
// host:port, over TLS (the client's default) or not, each judged by the
// client's own output.
func realClientFlow(t *testing.T, host, port string, useTLS bool) {
	t.Helper()
	run := func(args ...string) string { t.Helper(); return realClient(t, args...) }
	ssl, noSSL := "False", []string{"--no-ssl"}
	if useTLS {
		ssl, noSSL = "True", nil
	}
	client := func(code string) string {
		t.Helper()
		return run("-c", "import json\nfrom piconetcontrol.client import Client\nc = Client('"+host+"', "+port+", use_ssl="+ssl+")\n"+code)
	}

	// Seed 002's CLI example, numbers as strings.
	out := run(append(append([]string{"run_client.py", host, port}, noSSL...), "-c", "action=setup_pin", "pin=3", "mode=output", "value=0",
		"-c", "action=write_pin", "pin=3", "value=1", "timeout=2")...)
	if !strings.Contains(out, "write_pin") || strings.Contains(out, "error") {
		t.Fatalf("the CLI example:\n%s", out)
	}
	if v := client("print(c.send_command(action='read_pin', pin=3)['value'])"); strings.TrimSpace(v) != "1" {
		t.Fatalf("read_pin after write_pin: %s", v)
	}
	time.Sleep(2500 * time.Millisecond) // the write's timeout: the fail-safe puts it back
	if v := client("print(c.send_command(action='read_pin', pin=3)['value'])"); strings.TrimSpace(v) != "0" {
		t.Fatalf("read_pin after the write's timeout: %s", v)
	}

	// send_ping's statistics: the board's time_received is the wall clock.
	var ping struct {
		RTT, Tsend float64
		Error      bool
	}
	out = client("r = c.send_ping()\nprint(json.dumps({'rtt': r['rtt'], 'tsend': r['tsend'], 'error': r['error']}))")
	if err := json.Unmarshal([]byte(out), &ping); err != nil || ping.Error || ping.RTT <= 0 || ping.RTT > 1 || math.Abs(ping.Tsend) > 1 {
		t.Fatalf("send_ping: %s (rtt and tsend in seconds: a tsend far from 0 is a board clock off the wall clock)", out)
	}
	t.Logf("send_ping: rtt %.4f s, tsend %.4f s", ping.RTT, ping.Tsend)

	for _, action := range []string{"get_info", "get_version", "list_actions", "get_resource_info"} {
		if out := client("print(json.dumps(c.send_command(action='" + action + "')))"); strings.Contains(out, `"error"`) {
			t.Fatalf("%s: %s", action, out)
		}
	}

	// update_server(): its version comes from the server_base.py it sends.
	out = client("c.update_server()")
	if !strings.Contains(out, "Server updated successfully") {
		t.Fatalf("update_server:\n%s", out)
	}
	t.Logf("update_server: %s", lastLines(out, 3))

	// An update whose main.py crashes at boot: the board rolls back to what
	// it ran (seed 002: "the server will revert to the previous version").
	out = client(`c.send_command(action='update', compress=False, files={'main.py': '# picosim: crash at boot\n', 'server_base.py': 'class S:\n    _VERSION = "9.9.9"\n'})
import time
time.sleep(3)
c.poll_command_response(dict(action='ping'), lambda x: x.get('action') == 'ping', 1, 10, allow_connection_refused=True)
print('version after the failed update:', c.send_command(action='get_version')['version'])`)
	if !strings.Contains(out, "version after the failed update: 1.13.1") {
		t.Fatalf("the crashing update:\n%s", out)
	}
	t.Logf("rollback: %s", lastLines(out, 1))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// picosim ctl --tls talks to a board behind picosim up --tls; without
// --tls it cannot (the port speaks TLS only).
func TestCtlSpeaksTLS(t *testing.T) {
	host, port := realClientCluster(t, newServerTLS(t))
	addr := net.JoinHostPort(host, port)
	if code, out, errOut := picosim(t, "ctl", addr, "--tls", "--json", "-c", "action=ping"); code != 0 || !strings.Contains(out, "time_received") {
		t.Fatalf("--tls: exit %d: %s %s", code, out, errOut)
	}
	if code, out, _ := picosim(t, "ctl", addr, "--retries", "0", "--timeout", "1s", "-c", "action=ping"); code == 0 {
		t.Fatalf("plain TCP to a TLS port answered: %s", out)
	}
}

// picosim tls-pair writes what the real server reads, and up --tls loads
// it; it keeps an existing pair unless --force.
func TestTLSPairWritesWhatTheServerReads(t *testing.T) {
	dir := t.TempDir()
	if code, out, errOut := picosim(t, "tls-pair", "--out", dir); code != 0 || !strings.Contains(out, "ec_cert.der") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	cert, key := filepath.Join(dir, tlscert.CertFile), filepath.Join(dir, tlscert.KeyFile)
	if _, err := upCertificate(cert, key); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := picosim(t, "tls-pair", "--out", dir); code != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("over an existing pair: exit %d: %s", code, errOut)
	}
	if code, _, _ := picosim(t, "tls-pair", "--out", dir, "--force"); code != 0 {
		t.Fatal("--force")
	}
	if _, err := upCertificate(cert, ""); err == nil {
		t.Fatal("--tls-cert without --tls-key accepted")
	}
}

// newServerTLS is a TLS server configuration with a new pair.
func newServerTLS(t *testing.T) *tls.Config {
	t.Helper()
	certDER, keyDER, err := tlscert.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tlscert.Load(certDER, keyDER)
	if err != nil {
		t.Fatal(err)
	}
	return tlscert.ServerConfig(cert)
}

// Silent clients on a TLS port (connected, no handshake) do not lock the
// others out: each is closed after sim.TLSHandshakeTimeout, and a real TLS
// client gets through.
func TestSilentClientsDoNotHoldATLSPort(t *testing.T) {
	host, port := realClientCluster(t, newServerTLS(t))
	addr := net.JoinHostPort(host, port)
	for range 40 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	start := time.Now()
	if !pingsWithin(addr, true, sim.TLSHandshakeTimeout+5*time.Second) {
		t.Fatalf("no TLS client got through in %v beside 40 silent connections", time.Since(start))
	}
	t.Logf("a TLS client got through %v after 40 silent ones", time.Since(start).Round(100*time.Millisecond))
}
