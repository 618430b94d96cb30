package sim_test

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/simtest"
)

// controlled boots a cluster, waits for it to agree, and connects a
// controller to pico2.
func controlled(cfg sim.Config) (*sim.Cluster, *sim.Controller) {
	GinkgoHelper()
	c := newCluster(cfg)
	Eventually(simtest.Within(c, c.FailoverBound(), c.Agreement)).Should(Succeed())
	ct, err := c.NewController("laptop")
	Expect(err).NotTo(HaveOccurred())
	Expect(ct.Connect("pico2")).To(Succeed())
	return c, ct
}

// do sends a command and expects a reply without error.
func do(ct *sim.Controller, cmd string) sim.Reply {
	GinkgoHelper()
	r, err := ct.Do(cmd)
	Expect(err).NotTo(HaveOccurred())
	Expect(r.Fields).NotTo(HaveKey("error"), "reply %s", r.Raw)
	return r
}

var _ = Describe("the control protocol of a virtual board", func() {
	var (
		c  *sim.Cluster
		ct *sim.Controller
	)
	BeforeEach(func() {
		c, ct = controlled(sim.Config{Boards: 3, Seed: 21, Link: netsim.Link{Latency: 5 * time.Millisecond}})
	})

	It("runs the documented example: setup, read, write with timeout 5, read, wait, read gives 0, 1, 0", func() {
		do(ct, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
		Expect(do(ct, `{"action": "read_pin", "pin": 2}`).Fields["value"]).To(BeEquivalentTo(0))
		written := do(ct, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 5}`)
		Expect(do(ct, `{"action": "read_pin", "pin": 2}`).Fields["value"]).To(BeEquivalentTo(1))
		c.Run(5 * time.Second)
		Expect(do(ct, `{"action": "read_pin", "pin": 2}`).Fields["value"]).To(BeEquivalentTo(0))

		revert := c.Board("pico2").GPIO().PinHistory(2)
		Expect(revert).To(HaveLen(3))
		Expect(revert[2].Cause).To(Equal("revert"))
		// Latency is on the boards' downlinks only: the reply reaches the
		// laptop at the moment the write reached the board.
		Expect(revert[2].At).To(Equal(written.At + 5*time.Second))
	})

	It("answers every action with the documented reply", func() {
		r := do(ct, `{"action": "ping", "time_sent": 1}`)
		Expect(r.Fields).To(HaveKeyWithValue("time_sent", BeEquivalentTo(1)))
		Expect(r.Fields).To(HaveKey("time_received"))
		Expect(do(ct, `{"action": "get_version"}`).Fields).To(HaveKeyWithValue("version", control.Version))
		for _, name := range []string{"get_info", "get_resource_info"} {
			Expect(do(ct, `{"action": "`+name+`"}`).Fields["info"]).To(HaveKey("mem_free"))
		}
		var listed []string
		for _, a := range do(ct, `{"action": "list_actions"}`).Fields["actions"].([]any) {
			listed = append(listed, a.(string))
		}
		Expect(listed).To(Equal(append(slices.Clone(control.Actions), "get_state", "start_app", "stop_app")),
			"the protocol's actions, then the firmware's")
		do(ct, `{"action": "setup_pin", "pin": 7, "mode": "input"}`)
		Expect(do(ct, `{"action": "read_pin", "pin": 7}`).Fields["value"]).To(BeEquivalentTo(0))
		r, err := ct.Do(`{"action": "write_pin", "pin": 9, "value": 1, "timeout": 1}`)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Fields).To(HaveKeyWithValue("exception", "GPIOPinNotSetupError"))
		Expect(r.Fields).To(HaveKeyWithValue("action", "write_pin"), "an error reply echoes the request")
	})

	It("reverts within one tick of the deadline, for writes at any moment", func() {
		do(ct, `{"action": "setup_pin", "pin": 3, "mode": "output", "value": 0}`)
		rng := rand.New(rand.NewPCG(1, 2))
		for range 20 {
			timeout := time.Duration(1+rng.IntN(3000)) * time.Millisecond
			c.Run(time.Duration(rng.IntN(500)) * time.Millisecond)
			do(ct, fmt.Sprintf(`{"action": "write_pin", "pin": 3, "value": 1, "timeout": %g}`, timeout.Seconds()))
			at := heldUntil(c, "pico2", 3)
			Expect(at).NotTo(BeZero(), "a revert is scheduled")
			c.Run(timeout + time.Second)
			h := c.Board("pico2").GPIO().PinHistory(3)
			Expect(h[len(h)-1].Cause).To(Equal("revert"))
			Expect(h[len(h)-1].At).To(BeNumerically("~", at, time.Microsecond))
		}
		Expect(c.FailSafe()).To(Succeed())
	})

	It("reverts the pin of a controller that disconnected mid-timeout", func() {
		do(ct, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
		do(ct, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 5}`)
		c.Run(time.Second)
		ct.Close()
		Eventually(simtest.Within(c, 5*time.Second, func() error {
			if v := c.Board("pico2").GPIO().Level(2); v != 0 {
				return fmt.Errorf("GPIO2 still %d", v)
			}
			return nil
		})).Should(Succeed())
		Consistently(simtest.During(c, 30*time.Second, c.FailSafe)).Should(Succeed())
	})

	It("serves another client while one sends 10,000 fuzzed commands", func() {
		other, err := c.NewController("phone")
		Expect(err).NotTo(HaveOccurred())
		Expect(other.Connect("pico2")).To(Succeed())
		do(other, `{"action": "setup_pin", "pin": 4, "mode": "output", "value": 0}`)
		rng := rand.New(rand.NewPCG(3, 4))
		pieces := []string{`{`, `}`, `"action"`, `: `, `"write_pin"`, `"pin"`, `29`, `-1`, `"x"`, `, `, `[`, `null`, `1e999`, `"\u0000"`, `"timeout"`, `"value"`, `2`, "\xff", `"setup_pin"`, `"mode"`}
		for i := range 10_000 {
			var b strings.Builder
			for range 1 + rng.IntN(12) {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
			Expect(ct.Send(b.String() + "\n")).To(Succeed())
			if i%1000 == 0 {
				r := do(other, `{"action": "read_pin", "pin": 4}`)
				Expect(r.Fields["value"]).To(BeEquivalentTo(0))
			}
		}
		c.Run(time.Second)
		Expect(ct.Replies()).To(HaveLen(10_000), "one reply per fuzzed line")
		errs := 0
		for _, r := range ct.Replies() {
			if r.Err() != "" {
				errs++
			}
		}
		Expect(errs).To(BeNumerically(">", 9_000))
		do(other, `{"action": "ping"}`)
	})

	It("answers an oversized command with an error and carries on", func() {
		r, err := ct.Do(`{"action": "ping", "pad": "` + strings.Repeat("x", 10_000) + `"}`)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Err()).To(ContainSubstring("longer than 8192 bytes"))
		do(ct, `{"action": "ping"}`)
	})

	It("resets a second after replying, and boots with the pins of its settings", func() {
		c, ct := controlled(sim.Config{Boards: 3, Seed: 21, Pins: map[string][]firmware.PinSetup{"pico2": {{Pin: 5, Output: true, Value: 1}}}})
		do(ct, `{"action": "write_pin", "pin": 5, "value": 0, "timeout": 600}`)
		do(ct, `{"action": "setup_pin", "pin": 6, "mode": "output", "value": 1}`) // not in its settings
		r := do(ct, `{"action": "reset"}`)
		Eventually(simtest.Within(c, 2*time.Second, func() error {
			if len(c.Timeline().Of(firmware.EvReset)) == 0 {
				return fmt.Errorf("no reset yet")
			}
			return nil
		})).Should(Succeed())
		Expect(c.Timeline().Of(firmware.EvReset)[0].At).To(BeNumerically("~", r.At+time.Second, 10*time.Millisecond))
		Expect(c.Board("pico2").GPIO().Level(5)).To(Equal(1), "set up again from its settings")
		Expect(c.Board("pico2").GPIO().Level(6)).To(Equal(0), "a pin set up by a controller is gone")
		// The board rebooted without closing: the old connection learns it
		// from the reset its next command draws, and a new one works.
		_, err := ct.Do(`{"action": "ping"}`)
		Expect(err).To(HaveOccurred())
		Expect(ct.Closed()).To(BeTrue())
		Expect(ct.Connect("pico2")).To(Succeed())
		do(ct, `{"action": "ping"}`)
		Eventually(simtest.Within(c, 2*c.FailoverBound(), c.Agreement)).Should(Succeed())
	})

	It("rolls back an update whose image fails its health check, and keeps a good one", func() {
		_, err := ct.Do(`{"action": "update", "files": {"main.py": "` + firmware.CrashMarker + `\n", "VERSION": "2.0.0"}, "compress": false}`)
		Expect(err).NotTo(HaveOccurred())
		Eventually(simtest.Within(c, 10*time.Second, func() error {
			if len(c.Timeline().Of(firmware.EvRollback)) == 0 {
				return fmt.Errorf("no rollback yet")
			}
			return nil
		})).Should(Succeed())
		Expect(c.Timeline().Of(firmware.EvBootFail)).To(HaveLen(1))
		Expect(c.Board("pico2").State().Version).To(Equal(control.Version))
		Eventually(simtest.Within(c, 2*c.FailoverBound(), c.Agreement)).Should(Succeed())

		Expect(ct.Connect("pico2")).To(Succeed())
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write([]byte("print('v2.1')\n"))
		w.Close()
		main := base64.StdEncoding.EncodeToString(z.Bytes())
		do(ct, `{"action": "update", "files": {"main.py": "`+main+`", "VERSION": "`+base64.StdEncoding.EncodeToString(zlibBytes("2.1.0"))+`"}, "compress": true}`)
		c.Run(3 * time.Second)
		Expect(ct.Connect("pico2")).To(Succeed())
		Expect(do(ct, `{"action": "get_version"}`).Fields["version"]).To(Equal("2.1.0"))
	})

	It("wakes from a light sleep for a command and answers it at once (seed 002)", func() {
		do(ct, `{"action": "sleep", "time_ms": 30000, "deep": 0}`)
		c.Run(1500 * time.Millisecond) // asleep from a second after the reply, for 30 s
		Expect(c.Board("pico2").State().Asleep).To(BeTrue())
		sent := c.Now()
		reply, err := ct.Do(`{"action": "ping"}`)
		Expect(err).NotTo(HaveOccurred())
		Expect(reply.At-sent).To(BeNumerically("<", 100*time.Millisecond), "the reply waited for the sleep's end")
		Expect(c.Board("pico2").State().Asleep).To(BeFalse())
	})

	It("reboots after a deep sleep of time_ms, as a new incarnation", func() {
		r := do(ct, `{"action": "sleep", "time_ms": 4000, "deep": 1}`)
		inc := c.Board("pico2").Incarnation()
		Eventually(simtest.Within(c, 6*time.Second, func() error {
			if c.Board("pico2").Incarnation() == inc {
				return fmt.Errorf("still incarnation %d", inc)
			}
			return nil
		})).Should(Succeed())
		wake := c.Timeline().Of(firmware.EvWake)
		Expect(wake).To(HaveLen(1))
		Expect(wake[0].At).To(BeNumerically("~", r.At+5*time.Second, 10*time.Millisecond))
		Eventually(simtest.Within(c, 2*c.FailoverBound(), c.Agreement)).Should(Succeed())
	})

	It("blinks the idle pattern without a controller and the active one with", func() {
		c.Run(5 * time.Second)
		Expect(c.Board("pico2").GPIO().LEDPattern()).To(Equal("active"))
		Expect(c.Board("pico3").GPIO().LEDPattern()).To(Equal("idle"))
		ct.Close()
		c.Run(7 * time.Second)
		Expect(c.Board("pico2").GPIO().LEDPattern()).To(Equal("idle"))
	})
})

var _ = Describe("the fail-safe option", func() {
	It("reverts held pins when the board loses its master, if RevertOnLoss is on", func() {
		c, ct := controlled(sim.Config{Boards: 3, Seed: 22, Settings: firmware.Settings{RevertOnLoss: true}})
		do(ct, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
		do(ct, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 600}`)
		Expect(c.PowerOff("pico1")).To(Succeed())
		Eventually(simtest.Within(c, c.FailoverBound(), func() error {
			if v := c.Board("pico2").GPIO().Level(2); v != 0 {
				return fmt.Errorf("GPIO2 still %d", v)
			}
			return nil
		})).Should(Succeed())
	})

	It("keeps them until their timeout when it is off (the default)", func() {
		c, ct := controlled(sim.Config{Boards: 3, Seed: 22})
		do(ct, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
		do(ct, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 60}`)
		Expect(c.PowerOff("pico1")).To(Succeed())
		c.Run(c.FailoverBound())
		Expect(c.Board("pico2").GPIO().Level(2)).To(Equal(1))
	})
})

// heldUntil is when a board's pin reverts, from its state; 0 if it does not.
func heldUntil(c *sim.Cluster, board string, pin int) time.Duration {
	for _, p := range c.Board(board).State().Pins {
		if p.Pin == pin && p.HeldUntilMS != 0 {
			return time.Duration(p.HeldUntilMS * float64(time.Millisecond))
		}
	}
	return 0
}

func zlibBytes(s string) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write([]byte(s))
	w.Close()
	return z.Bytes()
}

var _ = Describe("the harness's controller", func() {
	// A connect on a lossy link can lose its three ARP requests (or its
	// SYNs); the controller tries again, as ctl.Dial does for emulated and
	// real boards, so that a scenario fails on the board, not on the
	// harness's single try. At 40% loss a single try fails about one time in
	// sixteen.
	It("connects at 40% loss on every one of 200 seeds", func() {
		failed := []string{}
		for seed := uint64(1); seed <= 200; seed++ {
			c, err := sim.New(sim.Config{Boards: 2, Seed: seed, Link: netsim.Link{Loss: 0.4}, NoTimeline: true})
			Expect(err).NotTo(HaveOccurred())
			c.Run(3 * time.Second)
			ct, err := c.NewController("laptop")
			Expect(err).NotTo(HaveOccurred())
			if err := ct.Connect("pico2"); err != nil {
				failed = append(failed, fmt.Sprintf("seed %d: %v", seed, err))
			}
			c.Close()
		}
		Expect(failed).To(BeEmpty())
	})
})
