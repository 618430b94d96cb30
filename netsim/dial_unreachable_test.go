package netsim_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
)

// dialResult is what a DialTCP callback reported, and when.
type dialResult struct {
	calls int
	conn  *netsim.TCPConn
	err   error
	at    time.Duration
}

// dial connects from to addr and runs the clock until the callback has
// run, or for at most 10 simulated minutes.
func dial(t *testing.T, lan *netsim.LAN, from *netsim.Host, to netip.AddrPort) *dialResult {
	t.Helper()
	r := &dialResult{}
	from.DialTCP(to, func(c *netsim.TCPConn, err error) {
		r.calls++
		r.conn, r.err, r.at = c, err, lan.Clock().Now()
	})
	lan.Clock().RunUntil(10*time.Minute, func() bool { return r.calls > 0 })
	if r.calls == 0 {
		t.Fatalf("dial %v: no callback after %v", to, lan.Clock().Now())
	}
	return r
}

func newDialLAN(t *testing.T) *netsim.LAN {
	t.Helper()
	lan, err := netsim.New(netsim.Config{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lan.Close() })
	return lan
}

// Nobody answers ARP for the address: the connect fails as Linux's does,
// with EHOSTUNREACH once address resolution gives up (3 requests, 1 s
// apart: at 3 s), not never.
func TestDialUnansweredARPFailsHostUnreachable(t *testing.T) {
	lan := newDialLAN(t)
	cli, err := lan.AddHost(netsim.HostConfig{Name: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	to := netip.MustParseAddrPort("192.168.1.77:80")
	r := dial(t, lan, cli, to)
	if r.err == nil {
		t.Fatalf("dial %v succeeded at %v; want host unreachable", to, r.at)
	}
	msg := r.err.Error()
	if !strings.Contains(msg, "unreachable") || !strings.Contains(msg, to.Addr().String()) {
		t.Errorf("dial error %q: want it to say the host is unreachable and name %v", msg, to.Addr())
	}
	if r.at < 2*time.Second || r.at > 10*time.Second {
		t.Errorf("dial failed at %v; want between 2 s and 10 s (address resolution gives up at 3 s)", r.at)
	}
	// Nothing reports it twice, later.
	lan.Clock().Run(lan.Clock().Now() + time.Minute)
	if r.calls != 1 {
		t.Errorf("callback ran %d times", r.calls)
	}
	t.Logf("at %v: %v", r.at, r.err)
}

// A live host with nothing on the port answers RST: a hard error, which is
// a failed connect, never a connected one.
func TestDialClosedPortFails(t *testing.T) {
	lan := newDialLAN(t)
	srv, _ := lan.AddHost(netsim.HostConfig{Name: "server"})
	cli, _ := lan.AddHost(netsim.HostConfig{Name: "client"})
	r := dial(t, lan, cli, netip.AddrPortFrom(srv.IP(), 81))
	if r.err == nil {
		t.Fatalf("dial to a closed port succeeded at %v", r.at)
	}
	if !strings.Contains(r.err.Error(), "refused") {
		t.Errorf("dial error %q: want connection refused", r.err)
	}
	if r.at > time.Second {
		t.Errorf("refused at %v; want at once", r.at)
	}
}

// A connect to a listener still succeeds, and the connection carries data.
func TestDialLiveListenerSucceeds(t *testing.T) {
	lan := newDialLAN(t)
	srv, _ := lan.AddHost(netsim.HostConfig{Name: "server"})
	cli, _ := lan.AddHost(netsim.HostConfig{Name: "client"})
	if _, err := srv.ListenTCP(7, func(c *netsim.TCPConn) {
		c.OnData = func(p []byte) { c.Write(p) }
	}); err != nil {
		t.Fatal(err)
	}
	r := dial(t, lan, cli, netip.AddrPortFrom(srv.IP(), 7))
	if r.err != nil || r.conn == nil {
		t.Fatalf("dial to a listener: %v", r.err)
	}
	if r.at > time.Second {
		t.Errorf("connected at %v; want at once", r.at)
	}
	var got string
	r.conn.OnData = func(p []byte) { got += string(p) }
	r.conn.Write([]byte("ping"))
	lan.Clock().RunUntil(lan.Clock().Now()+time.Minute, func() bool { return got == "ping" })
	if got != "ping" {
		t.Fatalf("echo: got %q", got)
	}
	if r.calls != 1 {
		t.Errorf("callback ran %d times", r.calls)
	}
}
