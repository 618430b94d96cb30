package calibrate

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
)

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

func TestScratchReboot(t *testing.T) {
	c, _ := sim.New(sim.Config{Boards: 4, Seed: 3, Settings: firmware.Settings{Heartbeat: 100 * time.Millisecond}})
	defer c.Close()
	c.SetLink("pico2", netsim.Link{Burst: &netsim.Burst{P: 0.1 / 3 / 0.9, R: 1.0 / 3, LossBad: 1}, Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Dist: netsim.Normal}, "pico1")
	c.SetLink("pico1", netsim.Link{Loss: 0.02, Latency: 5 * time.Millisecond, Jitter: 1 * time.Millisecond, Dist: netsim.Uniform}, "pico3")
	var buf bytes.Buffer
	c.StartCapture(&buf)
	for i := 0; i < 5; i++ {
		c.Run(400 * time.Second)
		c.PowerOff("pico2")
		c.Run(3 * time.Second)
		c.PowerOn("pico2")
		c.Run(100 * time.Second)
		c.PowerOff("pico1")
		c.Run(2 * time.Second)
		c.PowerOn("pico1")
	}
	c.StopCapture()
	for _, share := range []float64{0, 0.02, 0.1} {
		data := dropPackets(buf.Bytes(), share, 9)
		cp, err := Read(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Estimate(cp, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, bd := range p.Boards {
			t.Logf("drop %.2f %s boots %d hb %d notcap %d", share, bd.Name, bd.Boots, bd.Heartbeats, bd.NotCaptured)
		}
		for _, pr := range p.Pairs {
			if pr.From == "pico1" && pr.To == "pico2" || pr.From == "pico3" && pr.To == "pico1" || pr.From == "pico2" && pr.To == "pico3" {
				t.Logf("drop %.2f %s->%s n %5d loss %.4f±%.4f burst %.3f±%.3f p50 %.2f p90 %.2f %s %.2f ex %v", share, pr.From, pr.To, pr.Samples, pr.Loss, pr.LossSE, pr.BurstLength, pr.BurstSE, pr.Latency.P50, pr.Latency.P90, pr.Latency.Dist, pr.Latency.Jitter, pr.Excluded)
			}
		}
	}
}
