package netsim_test

import (
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
)

// stream sends n numbered datagrams from one host to another, one every
// spacing, through link on the receiver's side, and reports what arrived:
// sequence numbers in arrival order and each one's one-way delay.
type arrival struct {
	seq   int
	delay time.Duration
}

func stream(t *testing.T, n int, spacing time.Duration, link netsim.Link, size int) (netsim.Counters, []arrival) {
	t.Helper()
	lan, err := netsim.New(netsim.Config{Seed: 42})
	t.Cleanup(func() { lan.Close() })
	if err != nil {
		t.Fatal(err)
	}
	a, _ := lan.AddHost(netsim.HostConfig{Name: "a"})
	b, _ := lan.AddHost(netsim.HostConfig{Name: "b", Down: link})
	clk := lan.Clock()
	var got []arrival
	var conn *netsim.UDPConn
	conn, err = b.ListenUDP(9, func() {
		clk.AfterFunc(0, func() {
			for {
				p, _, ok := conn.ReadFrom()
				if !ok {
					return
				}
				seq := int(binary.BigEndian.Uint32(p))
				got = append(got, arrival{seq, clk.Now() - time.Duration(seq)*spacing})
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	send, _ := a.ListenUDP(9, nil)
	payload := make([]byte, size)
	to := netip.AddrPortFrom(lan.Broadcast(), 9)
	for i := range n {
		clk.At(time.Duration(i)*spacing, func() {
			binary.BigEndian.PutUint32(payload, uint32(i))
			send.WriteTo(payload, to)
		})
	}
	clk.Run(time.Duration(n)*spacing + 10*time.Second)
	return b.Counters(), got
}

const frames = 100_000

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s: got %.4f, want %.4f ± %.4f", what, got, want, tol)
	} else {
		t.Logf("%s: %.4f (setting %.4f)", what, got, want)
	}
}

func TestLossRateMatchesTheSetting(t *testing.T) {
	c, got := stream(t, frames, time.Millisecond, netsim.Link{Loss: 0.1}, 32)
	within(t, "loss", 1-float64(len(got))/frames, 0.1, 0.005)
	if c.Lost+uint64(len(got)) != frames {
		t.Errorf("counters: lost %d + delivered %d != %d", c.Lost, len(got), frames)
	}
}

func delays(got []arrival) []time.Duration {
	d := make([]time.Duration, len(got))
	for i, a := range got {
		d[i] = a.delay
	}
	slices.Sort(d)
	return d
}

func pct(d []time.Duration, q float64) time.Duration { return d[int(q*float64(len(d)-1))] }

func TestLatencyPercentilesFollowTheDistribution(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	cases := []struct {
		name string
		link netsim.Link
		want map[float64]time.Duration // quantile -> delay
	}{
		{"constant", netsim.Link{Latency: 20 * time.Millisecond}, map[float64]time.Duration{0.01: ms(20), 0.5: ms(20), 0.99: ms(20)}},
		{"uniform 20±5 ms", netsim.Link{Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond},
			map[float64]time.Duration{0.1: ms(16), 0.5: ms(20), 0.9: ms(24), 0.99: ms(24.9)}},
		{"normal 20 ms, sigma 5 ms", netsim.Link{Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Dist: netsim.Normal},
			map[float64]time.Duration{0.1: ms(20 - 1.2816*5), 0.5: ms(20), 0.9: ms(20 + 1.2816*5), 0.99: ms(20 + 2.3263*5)}},
		// 10% of frames get an extra exponential delay of mean 10 ms: above
		// the 90th percentile, q = 0.9 + 0.1*(1-exp(-x/10)). (The sampling
		// error of a percentile grows with the tail's mean: at 100,000
		// frames it is about 0.3 ms here, 1.5 ms for a 50 ms tail.)
		{"constant 5 ms with a tail", netsim.Link{Latency: 5 * time.Millisecond, TailProb: 0.1, TailMean: 10 * time.Millisecond},
			map[float64]time.Duration{0.5: ms(5), 0.95: ms(5 + 10*math.Log(2)), 0.99: ms(5 + 10*math.Log(10))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, got := stream(t, frames, 100*time.Microsecond, c.link, 32)
			d := delays(got)
			for q, want := range c.want {
				within(t, "p"+formatQ(q)+" ms", float64(pct(d, q))/1e6, float64(want)/1e6, 1)
			}
		})
	}
}

func formatQ(q float64) string {
	return string(rune('0'+int(q*10)%10)) + string(rune('0'+int(q*100)%10))
}

func TestDuplicationRateMatchesTheSetting(t *testing.T) {
	c, got := stream(t, frames, time.Millisecond, netsim.Link{Duplicate: 0.05}, 32)
	within(t, "duplicates per frame", float64(len(got)-frames)/frames, 0.05, 0.005)
	if uint64(len(got)) != c.Delivered {
		t.Errorf("delivered %d, counted %d", len(got), c.Delivered)
	}
}

func TestReorderingRateMatchesTheSetting(t *testing.T) {
	_, got := stream(t, frames, time.Millisecond, netsim.Link{Reorder: 0.05, ReorderDelay: 10 * time.Millisecond}, 32)
	// A frame is out of order when one sent after it arrived before it.
	maxSeen, out := -1, 0
	for _, a := range got {
		if a.seq < maxSeen {
			out++
		}
		maxSeen = max(maxSeen, a.seq)
	}
	within(t, "reordered", float64(out)/frames, 0.05, 0.005)
}

func TestBurstLossHasTheModelsMeanBurstLength(t *testing.T) {
	b := &netsim.Burst{P: 0.01, R: 0.25, LossBad: 1}
	_, got := stream(t, frames, time.Millisecond, netsim.Link{Burst: b}, 32)
	received := make([]bool, frames)
	for _, a := range got {
		received[a.seq] = true
	}
	bursts, lost, run := 0, 0, 0
	for _, ok := range received {
		if !ok {
			lost++
			run++
			continue
		}
		if run > 0 {
			bursts++
			run = 0
		}
	}
	within(t, "mean burst length", float64(lost)/float64(bursts), 1/b.R, 0.2)
	within(t, "loss", float64(lost)/frames, b.LossRate(), 0.005)
}

func TestCorruptedFramesAreCaughtByChecksums(t *testing.T) {
	c, got := stream(t, frames/10, time.Millisecond, netsim.Link{Corrupt: 0.1}, 200)
	for _, a := range got {
		if a.seq < 0 || a.seq >= frames/10 {
			t.Fatalf("a corrupted datagram reached the socket: seq %d", a.seq)
		}
	}
	within(t, "corrupted", float64(c.Corrupted)/(frames/10), 0.1, 0.01)
	// Every corrupted frame is lost to the application: IP and UDP
	// checksums catch any single flipped bit.
	if got, want := len(got), frames/10-int(c.Corrupted); got != want {
		t.Errorf("%d datagrams arrived, want %d (all but the corrupted)", got, want)
	}
}

func TestRateLimitSpacesFramesAndDropsBeyondTheQueue(t *testing.T) {
	// 1,000 frames of 100 bytes of payload (142 on the wire) sent at once
	// into 142,000 bytes per second: one frame per ms leaves, 10 wait.
	link := netsim.Link{Rate: 142_000, Queue: 10}
	c, got := stream(t, 1000, 0, link, 100)
	if len(got) != 10 || c.Overflow != 990 {
		t.Fatalf("delivered %d, overflowed %d", len(got), c.Overflow)
	}
	for i, a := range got {
		if want := time.Duration(i+1) * time.Millisecond; a.delay != want {
			t.Fatalf("frame %d left at %v, want %v", i, a.delay, want)
		}
	}
}

func TestOneWayCutAndMTU(t *testing.T) {
	lan, _ := netsim.New(netsim.Config{})
	t.Cleanup(func() { lan.Close() })
	a, _ := lan.AddHost(netsim.HostConfig{Name: "a"})
	b, _ := lan.AddHost(netsim.HostConfig{Name: "b", MTU: 576})
	ra, rb := listen(t, a, 9), listen(t, b, 9)
	sa, sb := ra.conn, rb.conn
	bcast := netip.AddrPortFrom(lan.Broadcast(), 9)
	if err := lan.Cut("a", "b"); err != nil {
		t.Fatal(err)
	}
	sa.WriteTo([]byte("from a"), bcast)
	sb.WriteTo([]byte("from b"), bcast)
	lan.Clock().Run(time.Second)
	fromA := func(r *receiver) (n int) {
		for _, g := range r.got {
			if strings.HasPrefix(g, a.IP().String()+":") {
				n++
			}
		}
		return n
	}
	// (Each host also hears its own broadcast, looped back by its stack.)
	if fromA(rb) != 0 || len(ra.got) != 2 {
		t.Fatalf("a got %v, b got %v: b should hear nothing from a", ra.got, rb.got)
	}
	lan.Restore("a", "b")
	sa.WriteTo(make([]byte, 1000), bcast) // too big for b's 576-byte MTU
	sa.WriteTo([]byte("small"), bcast)
	lan.Clock().Run(2 * time.Second)
	if fromA(rb) != 1 || b.Counters().TooBig != 1 {
		t.Fatalf("b got %v, counters %+v", rb.got, b.Counters())
	}
}

func TestPairLinkOverridesTheDownlink(t *testing.T) {
	lan, _ := netsim.New(netsim.Config{})
	t.Cleanup(func() { lan.Close() })
	a, _ := lan.AddHost(netsim.HostConfig{Name: "a"})
	b, _ := lan.AddHost(netsim.HostConfig{Name: "b"})
	c, _ := lan.AddHost(netsim.HostConfig{Name: "c", Down: netsim.Link{Latency: time.Millisecond}})
	rc := listen(t, c, 9)
	lan.SetPair("b", "c", netsim.Link{Latency: 30 * time.Millisecond})
	sa, _ := a.ListenUDP(9, nil)
	sb, _ := b.ListenUDP(9, nil)
	sa.WriteTo([]byte("a"), netip.AddrPortFrom(lan.Broadcast(), 9))
	sb.WriteTo([]byte("b"), netip.AddrPortFrom(lan.Broadcast(), 9))
	lan.Clock().Run(time.Second)
	if len(rc.at) != 2 || rc.at[0] != time.Millisecond || rc.at[1] != 30*time.Millisecond {
		t.Fatalf("c got %v at %v", rc.got, rc.at)
	}
}

func TestValidateNamesTheBadSetting(t *testing.T) {
	for _, c := range []struct {
		link netsim.Link
		says string
	}{
		{netsim.Link{Loss: 1.5}, "loss 1.5"},
		{netsim.Link{Burst: &netsim.Burst{P: 2}}, "burst p 2"},
		{netsim.Link{Reorder: -0.1}, "reorder -0.1"},
		{netsim.Link{Jitter: -time.Millisecond}, "jitter -1ms"},
		{netsim.Link{Rate: -1}, "rate -1"},
	} {
		if err := c.link.Validate(); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%+v: %v, want it to name %q", c.link, err, c.says)
		}
	}
	if err := (netsim.Link{Loss: 0.5, Burst: &netsim.Burst{P: 0.1, R: 0.5, LossBad: 1}}).Validate(); err != nil {
		t.Errorf("a valid link: %v", err)
	}
}
