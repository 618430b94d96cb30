package host_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/firmware/host"
	"github.com/picosim/picosim/internal/tlscert"
)

// freePort is a TCP port nobody listens on now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// boardOnLoopback runs a host board whose flash holds files, on the
// loopback interface, serving control on port.
func boardOnLoopback(t *testing.T, port uint16, files map[string][]byte) *syncBuffer {
	t.Helper()
	dir := t.TempDir()
	flash := host.DirFlash(dir)
	files[firmware.FileWLAN] = firmware.WLAN{SSID: "lab", Password: "pw", Port: port}.JSON()
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := flash.WriteFile(name, data); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	console := &syncBuffer{}
	go func() { done <- host.Run(ctx, host.Config{Flash: dir, Name: "pico1", Iface: "lo", Console: console}) }()
	t.Cleanup(func() { cancel(); <-done })
	return console
}

// syncBuffer is a console the test reads while the board writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ping sends one ping on conn and returns the reply line.
func ping(conn net.Conn) (string, error) {
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte(`{"action": "ping"}` + "\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(conn).ReadString('\n')
}

// With the real server's certificate and key in its flash, the emulated
// board serves TLS on its control port, as piconetcontrol's server does;
// without them, plain TCP. The real client with its defaults (TLS) gets
// its ping statistics.
func TestTheControlPortServesTLSWithAPairInFlash(t *testing.T) {
	certDER, keyDER, err := tlscert.Generate()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	console := boardOnLoopback(t, port, map[string][]byte{tlscert.CertFile: certDER, tlscert.KeyFile: keyDER})
	addr := "127.0.0.1:" + strconv.Itoa(int(port))
	var reply string
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			reply, err = ping(conn)
			conn.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS ping answered: %v; the board said:\n%s", err, console.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(reply, "time_received") {
		t.Fatalf("TLS ping: %q", reply)
	}
	if conn, err := net.DialTimeout("tcp4", addr, time.Second); err == nil {
		if r, err := ping(conn); err == nil && strings.Contains(r, "time_received") {
			t.Fatalf("plain TCP answered on a TLS port: %q", r)
		}
		conn.Close()
	}

	client := "../../../shared/clients/piconetcontrol-0.3.0"
	if _, err := os.Stat(client); err == nil {
		if py, err := exec.LookPath("python3"); err == nil {
			cmd := exec.Command(py, "run_client.py", "127.0.0.1", strconv.Itoa(int(port)))
			cmd.Dir, cmd.Env = client, append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), `"error": false`) {
				t.Fatalf("the real client with its defaults (TLS): %v\n%s", err, out)
			}
			t.Logf("run_client.py 127.0.0.1 %d (TLS): %s", port, strings.Join(strings.Fields(string(out)), " "))
		}
	}

	plain := freePort(t)
	boardOnLoopback(t, plain, map[string][]byte{})
	deadline = time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp4", "127.0.0.1:"+strconv.Itoa(int(plain)), time.Second)
		if err == nil {
			reply, err = ping(conn)
			conn.Close()
			if err == nil && strings.Contains(reply, "time_received") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no plain ping answered without a pair in flash: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
