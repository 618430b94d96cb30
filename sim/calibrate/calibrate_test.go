package calibrate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/sim"
)

// The links of the round trip, as a scenario would write them: pico1→pico2
// {loss: 10%, burst_length: 3, latency: 20ms, jitter: 5ms, distribution:
// normal}, pico3→pico1 {loss: 2%, latency: 5ms, jitter: 1ms} (uniform);
// the other pairs ideal.
var (
	burstyLink = netsim.Link{
		// As sim/scenario/link.go maps burst_length 3 and loss 10%.
		Burst:   &netsim.Burst{P: (1.0 / 3) * 0.1 / 0.9, R: 1.0 / 3, LossBad: 1},
		Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Dist: netsim.Normal,
	}
	lightLink = netsim.Link{Loss: 0.02, Latency: 5 * time.Millisecond, Jitter: time.Millisecond, Dist: netsim.Uniform}
)

// want is what a pair's link is, in the profile's terms.
type want struct {
	from, to    string
	loss, burst float64 // burst: mean burst length
	p50, p90    float64 // ms
	dist        string
}

var wants = []want{
	// N(20, 5): p90 = 20 + 1.2816·5.
	{"pico1", "pico2", 0.10, 3, 20, 20 + 1.2816*5, "normal"},
	// U(4, 6); independent losses: runs of mean 1/(1-loss).
	{"pico3", "pico1", 0.02, 1 / 0.98, 5, 5.8, "uniform"},
}

// Tolerances of issue 17's round trip.
const (
	lossTol    = 0.01 // ±1 percentage point
	burstTol   = 0.15 // ±15%
	latencyTol = 2.0  // ms, for p50 and p90
)

// simulate runs 4 boards on an ideal radio with 100 ms heartbeats for d of
// simulated time, with the round trip's links, and returns the capture.
// step, if set, runs between slices of the time (to reboot boards).
func simulate(t testing.TB, seed uint64, d time.Duration, step func(c *sim.Cluster)) (capture []byte, ips map[string][4]byte) {
	t.Helper()
	c, err := sim.New(sim.Config{Boards: 4, Seed: seed, Settings: firmware.Settings{Heartbeat: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetLink("pico2", burstyLink, "pico1"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLink("pico1", lightLink, "pico3"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.StartCapture(&buf); err != nil {
		t.Fatal(err)
	}
	if step == nil {
		c.Run(d)
	} else {
		for end := c.Now() + d; c.Now() < end; {
			c.Run(min(100*time.Second, end-c.Now()))
			step(c)
		}
	}
	if err := c.StopCapture(); err != nil {
		t.Fatal(err)
	}
	ips = map[string][4]byte{}
	for _, b := range c.Boards() {
		ips[b.Name()] = b.IP().As4()
	}
	return buf.Bytes(), ips
}

func pairOf(t testing.TB, p *Profile, from, to string) Pair {
	t.Helper()
	for _, pr := range p.Pairs {
		if pr.From == from && pr.To == to {
			return pr
		}
	}
	t.Fatalf("no pair %s -> %s in the profile", from, to)
	return Pair{}
}

// roundTrip calibrates a capture and checks every pair against its link
// within the tolerances, logging the errors.
func roundTrip(t *testing.T, capture []byte, ips map[string][4]byte) {
	t.Helper()
	start := time.Now()
	c, err := Read(bytes.NewReader(capture))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Estimate(c, Options{Source: "round trip"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d heartbeats (%.1f MB, %v simulated) read and calibrated in %v", len(c.Heartbeats), float64(len(capture))/1e6, c.Duration().Round(time.Second), time.Since(start).Round(time.Millisecond))
	for _, w := range wants {
		pr := pairOf(t, p, w.from, w.to)
		truth := groundTruth(capture, ips[w.from], w.to)
		l := pr.Latency
		t.Logf("%s -> %s: %d samples; loss %.2f%% (link %.0f%%: %+.2f pp; this run's frames %.2f%%: %+.2f pp), mean burst %.3f (link %.3f: %+.1f%%; this run's %.3f), p50 %.2f ms (%+.2f), p90 %.2f ms (%+.2f), %s jitter %.2f ms",
			w.from, w.to, pr.Samples, 100*pr.Loss, 100*w.loss, 100*(pr.Loss-w.loss), 100*truth.loss(), 100*(pr.Loss-truth.loss()),
			pr.BurstLength, w.burst, 100*(pr.BurstLength/w.burst-1), truth.meanBurst(), l.P50, l.P50-w.p50, l.P90, l.P90-w.p90, l.Dist, l.Jitter)
		if !pr.Estimated {
			t.Errorf("%s -> %s: not estimated (%d samples)", w.from, w.to, pr.Samples)
			continue
		}
		if d := math.Abs(pr.Loss - w.loss); d > lossTol {
			t.Errorf("%s -> %s: loss %.4f, want %.4f ± %.2f", w.from, w.to, pr.Loss, w.loss, lossTol)
		}
		if d := math.Abs(pr.BurstLength/w.burst - 1); d > burstTol {
			t.Errorf("%s -> %s: mean burst %.3f, want %.3f ± %.0f%%", w.from, w.to, pr.BurstLength, w.burst, 100*burstTol)
		}
		if math.Abs(l.P50-w.p50) > latencyTol || math.Abs(l.P90-w.p90) > latencyTol {
			t.Errorf("%s -> %s: latency p50 %.2f p90 %.2f ms, want %.2f and %.2f ± %.0f", w.from, w.to, l.P50, l.P90, w.p50, w.p90, latencyTol)
		}
		if l.Dist != w.dist {
			t.Errorf("%s -> %s: the jitter looks %q, want %q", w.from, w.to, l.Dist, w.dist)
		}
	}
	if pr := pairOf(t, p, "pico1", "pico2"); !pr.Bursty {
		t.Errorf("pico1 -> pico2: bursts not found (Lambda %.3f ± %.3f)", pr.Lambda, pr.LambdaSE)
	}
	if pr := pairOf(t, p, "pico3", "pico1"); pr.Bursty {
		t.Errorf("pico3 -> pico1: bursts where losses are independent (Lambda %.3f ± %.3f)", pr.Lambda, pr.LambdaSE)
	}
	for _, pr := range p.Pairs {
		if (pr.From == "pico1" && pr.To == "pico2") || (pr.From == "pico3" && pr.To == "pico1") {
			continue
		}
		// Ideal: nothing lost, heard within the millisecond. (A few
		// samples show as not heard when the frame's age happens to be a
		// relay's: the likelihood expects as many.)
		if !pr.Estimated || pr.Loss > 0.001 || math.Abs(pr.Latency.P50) > 0.5 || pr.Latency.Max > 1 || pr.Latency.Dist != "" {
			t.Errorf("%s -> %s is ideal: got %d samples, loss %.4f, latency %+v", pr.From, pr.To, pr.Samples, pr.Loss, pr.Latency)
		}
	}
}

// The round trip of issue 17: simulate with known links, capture,
// calibrate, get the links back. About 100,000 heartbeats.
func TestRoundTrip(t *testing.T) {
	start := time.Now()
	capture, ips := simulate(t, 1, 2500*time.Second, nil)
	t.Logf("simulated and captured in %v", time.Since(start).Round(time.Millisecond))
	roundTrip(t, capture, ips)
}

// A real capture has holes: the sniffer misses frames, boards reboot. A
// relay the sniffer missed must not pass for the frame itself, and a reboot
// starts new sequence numbers.
func TestRoundTripWithRebootsAndMissedFrames(t *testing.T) {
	n := 0
	capture, ips := simulate(t, 3, 2500*time.Second, func(c *sim.Cluster) {
		n++
		switch n % 5 {
		case 1:
			c.PowerOff("pico2")
			c.Run(3 * time.Second)
			c.PowerOn("pico2")
		case 3:
			c.PowerOff("pico1")
			c.Run(2 * time.Second)
			c.PowerOn("pico1")
		}
	})
	missed := dropPackets(capture, 0.05, 9)
	c, err := Read(bytes.NewReader(missed))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Estimate(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range p.Boards {
		t.Logf("%s: %d heartbeats, %d boots, %d not captured", b.Name, b.Heartbeats, b.Boots, b.NotCaptured)
		if b.NotCaptured < 500 {
			t.Errorf("%s: %d not captured of the 5%% dropped", b.Name, b.NotCaptured)
		}
		if (b.Name == "pico1" || b.Name == "pico2") && b.Boots < 4 {
			t.Errorf("%s: %d boots", b.Name, b.Boots)
		}
	}
	// Against the links, with the ground truth of the full capture.
	roundTrip(t, missed, ips)
}

// dropPackets removes a share of the packet blocks, as a sniffer that
// misses frames.
func dropPackets(b []byte, share float64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []byte
	for p := b; len(p) >= 12; {
		n := int(binary.LittleEndian.Uint32(p[4:]))
		if binary.LittleEndian.Uint32(p) != 6 || r.Float64() >= share {
			out = append(out, p[:n]...)
		}
		p = p[n:]
	}
	return out
}

// Longer captures, several seeds: PICOSIM_LONG=1 go test -run Long.
func TestRoundTripLong(t *testing.T) {
	if testing.Short() || os.Getenv("PICOSIM_LONG") == "" {
		t.Skip("set PICOSIM_LONG=1: 5 captures of 500,000 heartbeats, about 30 s")
	}
	for seed := uint64(11); seed <= 15; seed++ {
		capture, ips := simulate(t, seed, 12500*time.Second, nil)
		roundTrip(t, capture, ips)
	}
}

// BenchmarkCalibrate reads and calibrates a capture of 100,000 heartbeats.
func BenchmarkCalibrate(b *testing.B) {
	capture, _ := simulate(b, 1, 2500*time.Second, nil)
	b.SetBytes(int64(len(capture)))
	for b.Loop() {
		c, err := Read(bytes.NewReader(capture))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Estimate(c, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// truth is what the capture's comments say happened to one sender's
// heartbeats at one receiver: netsim writes who missed each frame, which
// the calibrator must not read but a test may.
type truth struct {
	sent, lost int
	bursts     []int // lengths of runs of consecutive lost frames
}

func (t truth) loss() float64 { return float64(t.lost) / float64(t.sent) }

func (t truth) meanBurst() float64 {
	s := 0
	for _, b := range t.bursts {
		s += b
	}
	return float64(s) / float64(len(t.bursts))
}

// groundTruth walks a netsim capture (little-endian, Ethernet, IPv4, UDP)
// and counts the heartbeats from one address that the comments say the
// link lost on the way to the receiver, by name; frames the receiver missed
// for another reason (it was off) count for nothing.
func groundTruth(capture []byte, from [4]byte, to string) truth {
	var t truth
	run := 0
	le := binary.LittleEndian
	for p := capture; len(p) >= 12; {
		typ, n := le.Uint32(p), int(le.Uint32(p[4:]))
		if n < 12 || n > len(p) {
			break
		}
		b := p[8 : n-4]
		p = p[n:]
		if typ != 6 {
			continue
		}
		capLen := int(le.Uint32(b[12:]))
		pkt := b[20 : 20+capLen]
		const udp = 14 + 20
		if len(pkt) < udp+9 || [4]byte(pkt[14+12:14+16]) != from || binary.BigEndian.Uint16(pkt[udp+2:]) != node.Port || pkt[udp+8] != byte(node.TypeHeartbeat) {
			continue
		}
		comment := ""
		if opts := b[20+(capLen+3)&^3:]; len(opts) >= 4 && le.Uint16(opts) == 1 {
			comment = string(opts[4 : 4+int(le.Uint16(opts[2:]))])
		}
		switch {
		case strings.Contains(comment, " "+to+" (") && !strings.Contains(comment, " "+to+" (loss)"):
			// Not for the link: the receiver was off, say. A burst
			// ends there.
			if run > 0 {
				t.bursts = append(t.bursts, run)
				run = 0
			}
		case strings.HasPrefix(comment, "dropped") || strings.Contains(comment, " "+to+" (loss)"):
			t.sent++
			t.lost++
			run++
		default:
			t.sent++
			if run > 0 {
				t.bursts = append(t.bursts, run)
				run = 0
			}
		}
	}
	return t
}

// The Gilbert fit on a chain drawn here, seen at irregular steps through
// reports that come too soon now and then.
func TestGilbertFit(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ loss, burst float64 }{{0.1, 3}, {0.3, 5}, {0.02, 1 / 0.98}, {0.05, 1.5}} {
		R := 1 / c.burst
		P := R * c.loss / (1 - c.loss)
		if c.burst == 1/(1-c.loss) {
			P, R = c.loss, 1-c.loss // independent
		}
		bad := r.Float64() < c.loss
		var samples []sample
		for seq := uint32(1); seq <= 200000; seq++ {
			if bad {
				bad = r.Float64() >= R
			} else {
				bad = r.Float64() < P
			}
			if r.Float64() < 0.5 {
				continue // not sampled
			}
			f := 1.0
			if r.Float64() < 0.3 {
				f = 0.6 // a report that came early
			}
			samples = append(samples, sample{inc: 1, seq: seq, heard: !bad && r.Float64() < f, f: f})
		}
		pr := Pair{}
		for _, s := range samples {
			if !s.heard {
				pr.Lost++
			}
		}
		fitGilbert(&pr, samples)
		t.Logf("loss %.3f burst %.3f: got %.4f ± %.4f, %.3f ± %.3f, bursty %v", c.loss, c.burst, pr.Loss, pr.LossSE, pr.BurstLength, pr.BurstSE, pr.Bursty)
		if math.Abs(pr.Loss-c.loss) > 4*pr.LossSE || math.Abs(pr.BurstLength-c.burst) > 4*pr.BurstSE && pr.BurstSE > 0 {
			t.Errorf("loss %.3f burst %.3f: got %.4f ± %.4f, %.3f ± %.3f", c.loss, c.burst, pr.Loss, pr.LossSE, pr.BurstLength, pr.BurstSE)
		}
		if pr.Bursty != (c.burst > 1/(1-c.loss)+0.01) {
			t.Errorf("loss %.3f burst %.3f: bursty %v", c.loss, c.burst, pr.Bursty)
		}
	}
}

// The latency fit from 1 ms intervals at random phases beats their
// midpoints, whose empirical CDF is smeared by ±0.5 ms.
func TestLatencyFit(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name string
		draw func() float64
		cdf  func(float64) float64
		tol  float64
	}{
		{"U(2,4)", func() float64 { return 2 + 2*r.Float64() }, func(x float64) float64 { return min(max((x-2)/2, 0), 1) }, 0.02},
		{"N(20,5)", func() float64 { return 20 + 5*r.NormFloat64() }, func(x float64) float64 { return 0.5 * math.Erfc(-(x-20)/5/math.Sqrt2) }, 0.02},
		{"U(0,0.3)", func() float64 { return 0.3 * r.Float64() }, func(x float64) float64 { return min(max(x/0.3, 0), 1) }, 0.1},
	} {
		mid := make([]float64, 10000)
		for i := range mid {
			lat := c.draw()
			u := lat + 5 + 100*r.Float64() // when the report went out
			mid[i] = u - math.Floor(u-lat) - 0.5
		}
		sortFloats(mid)
		d := fitLatency(mid)
		worst, worstMid := 0.0, 0.0
		for x := -1.0; x < 40; x += 0.01 {
			worst = max(worst, math.Abs(d.cdf(x)-c.cdf(x)))
			i := 0
			for i < len(mid) && mid[i] <= x {
				i++
			}
			worstMid = max(worstMid, math.Abs(float64(i)/float64(len(mid))-c.cdf(x)))
		}
		t.Logf("%s: CDF off by %.3f at worst (midpoints: %.3f)", c.name, worst, worstMid)
		if worst > c.tol {
			t.Errorf("%s: CDF off by %.3f", c.name, worst)
		}
	}
}

func sortFloats(x []float64) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// Capture errors say what they are, and a truncated one keeps what came
// before the cut.
func TestReadErrors(t *testing.T) {
	capture, _ := simulate(t, 2, 20*time.Second, nil)
	for _, c := range []struct {
		name  string
		data  []byte
		want  error
		keeps bool // a Capture with packets comes back
	}{
		{"empty", nil, ErrEmpty, false},
		{"pcap", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0}, ErrPcap, false},
		{"text", []byte("name: not a capture\n"), ErrNotPcapng, false},
		{"short", []byte{0x0A, 0x0D}, ErrNotPcapng, false},
		{"random", randomBytes(4096), ErrNotPcapng, false},
		{"cut in a block", capture[:len(capture)-50], ErrTruncated, true},
		{"cut in a header", capture[:len(capture)/2/4*4+2], ErrTruncated, true},
		{"bad length", badLength(capture), ErrCorrupt, true},
	} {
		got, err := Read(bytes.NewReader(c.data))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
			continue
		}
		if kept := got != nil && got.Packets > 0 && len(got.Heartbeats) > 0; kept != c.keeps {
			t.Errorf("%s: capture %v back with the error", c.name, got)
		}
		t.Logf("%s: %v", c.name, err)
	}
	if _, err := Estimate(&Capture{}, Options{}); !errors.Is(err, ErrNoHeartbeats) {
		t.Errorf("no heartbeats: %v", err)
	}
	c, _ := Read(bytes.NewReader(capture))
	var one Capture
	for _, h := range c.Heartbeats {
		if h.Name == "pico1" {
			one.Heartbeats = append(one.Heartbeats, h)
		}
	}
	if _, err := Estimate(&one, Options{}); !errors.Is(err, ErrOneBoard) {
		t.Errorf("one board: %v", err)
	}
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// badLength makes the length of a packet block in the middle absurd.
func badLength(capture []byte) []byte {
	out := append([]byte(nil), capture...)
	p, at := out, 0
	for len(p) >= 12 {
		n := int(binary.LittleEndian.Uint32(p[4:]))
		if binary.LittleEndian.Uint32(p) == 6 && at > len(out)/2 {
			binary.LittleEndian.PutUint32(p[4:], 0x7fffffff)
			break
		}
		p, at = p[n:], at+n
	}
	return out
}

// Keyed captures read with or without the key; a wrong key drops every frame.
func TestKeyed(t *testing.T) {
	key := []byte("picosim-demo-key")
	c, err := sim.New(sim.Config{Boards: 3, Seed: 4, Settings: firmware.Settings{Heartbeat: 100 * time.Millisecond, Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	c.StartCapture(&buf)
	c.Run(30 * time.Second)
	c.StopCapture()
	c.Close()
	plain, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil || len(plain.Heartbeats) < 800 || plain.Keyed != plain.Packets || !plain.Heartbeats[0].Keyed {
		t.Fatalf("without the key: %v, %d heartbeats, %d keyed of %d", err, len(plain.Heartbeats), plain.Keyed, plain.Packets)
	}
	checked, err := ReadWith(bytes.NewReader(buf.Bytes()), ReadOptions{Key: key})
	if err != nil || len(checked.Heartbeats) != len(plain.Heartbeats) || checked.Unauthenticated != 0 {
		t.Fatalf("with the key: %v, %d heartbeats, %d unauthenticated", err, len(checked.Heartbeats), checked.Unauthenticated)
	}
	wrong, err := ReadWith(bytes.NewReader(buf.Bytes()), ReadOptions{Key: []byte("another-demo-key")})
	if err != nil || len(wrong.Heartbeats) != 0 || wrong.Unauthenticated != wrong.Packets {
		t.Fatalf("with a wrong key: %v, %d heartbeats, %d unauthenticated", err, len(wrong.Heartbeats), wrong.Unauthenticated)
	}
	if _, err := Estimate(plain, Options{MinSamples: 10}); err != nil {
		t.Fatal(err)
	}
}

// Read never panics, and what it reads Estimate takes without panicking.
func FuzzRead(f *testing.F) {
	// The first 40 heartbeats of simulate(t, 5, 2*time.Second, nil).
	capture, err := os.ReadFile("testdata/small.pcapng")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(capture)
	f.Add(capture[:len(capture)/3])
	f.Add(badLength(capture))
	f.Add([]byte{})
	f.Add([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0})
	f.Add([]byte{0x0A, 0x0D, 0x0D, 0x0A, 28, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Read(bytes.NewReader(data))
		if c == nil {
			if err == nil {
				t.Fatal("no capture and no error")
			}
			return
		}
		if p, err := Estimate(c, Options{MinSamples: 1}); err == nil {
			_ = p.YAML()
			_ = p.Table(&bytes.Buffer{})
			if _, err := json.Marshal(p); err != nil {
				t.Fatalf("the profile is no JSON: %v", err) // a NaN or an Inf
			}
		}
	})
}
