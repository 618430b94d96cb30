package netsim_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
)

// echoRun makes n request/reply round trips between two hosts, 50 ms apart
// one way, entirely on the clock's goroutine, and returns when each reply
// arrived in simulated time.
func echoRun(t *testing.T, seed uint64, n int) []time.Duration {
	lan, err := netsim.New(netsim.Config{Seed: seed})
	t.Cleanup(func() { lan.Close() })
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := lan.AddHost(netsim.HostConfig{Name: "server"})
	cli, _ := lan.AddHost(netsim.HostConfig{Name: "client", Down: netsim.Link{Latency: 50 * time.Millisecond}})
	if _, err := srv.ListenTCP(7, func(c *netsim.TCPConn) {
		c.OnData = func(p []byte) { c.Write(p) }
	}); err != nil {
		t.Fatal(err)
	}
	var got []time.Duration
	var conn *netsim.TCPConn
	var dialErr error
	cli.DialTCP(netip.AddrPortFrom(srv.IP(), 7), func(c *netsim.TCPConn, err error) {
		conn, dialErr = c, err
		if err != nil {
			return
		}
		c.OnData = func(p []byte) {
			got = append(got, lan.Clock().Now())
			if len(got) < n {
				c.Write([]byte("ping"))
			}
		}
		c.Write([]byte("ping"))
	})
	lan.Clock().RunUntil(time.Minute, func() bool { return len(got) == n || dialErr != nil })
	if dialErr != nil || conn == nil {
		t.Fatalf("dial: %v", dialErr)
	}
	return got
}

func TestTCPRoundTripsRunInSimulatedTimeWithoutGoroutines(t *testing.T) {
	start := time.Now()
	got := echoRun(t, 1, 100)
	wall := time.Since(start)
	if len(got) != 100 {
		t.Fatalf("%d replies", len(got))
	}
	// ARP reply back to the client (50 ms), SYN-ACK back (50 ms), then each
	// round trip costs the 50 ms of the path to the client.
	if got[0] != 150*time.Millisecond || got[99] != 5100*time.Millisecond {
		t.Fatalf("replies at %v ... %v", got[0], got[99])
	}
	t.Logf("100 round trips: %v simulated in %v", got[99], wall)
}

func TestTCPRunsAreReplayable(t *testing.T) {
	a, b := echoRun(t, 3, 20), echoRun(t, 3, 20)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("round trip %d at %v, then at %v", i, a[i], b[i])
		}
	}
}
