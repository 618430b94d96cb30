package targets

import (
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/sim"
)

// state builds what a board reports, members given as name=role.
func state(name string, inc uint32, uptime int64, master string, members ...string) *firmware.State {
	s := &firmware.State{Name: name, Incarnation: inc, UptimeMS: uptime, Joined: true, Master: master, Role: "JOINING"}
	for i, m := range members {
		n, role, _ := strings.Cut(m, "=")
		s.Members = append(s.Members, firmware.MemberState{Name: n, IP: "10.0.0." + string(rune('1'+i)), Incarnation: 1, Role: role})
		if n == name {
			s.Role = role
		}
	}
	return s
}

var _ = Describe("the boards a wall-clock target watches", func() {
	var f *fleet
	BeforeEach(func() {
		f = newFleet("hw", []string{"pico1", "pico2"}, nil)
		f.setPowered("pico1", true)
		f.setPowered("pico2", true)
	})

	When("their states are polled over the network", func() {
		It("tells the timeline what changed between two states", func() {
			f.report("pico2", state("pico2", 1, 100, "", "pico2=JOINING"), 1*time.Second)
			f.report("pico2", state("pico2", 1, 600, "pico1", "pico1=MASTER", "pico2=WORKER1"), 2*time.Second)
			var kinds []string
			for _, e := range f.Timeline() {
				kinds = append(kinds, e.Kind+" "+e.Member+e.Role)
			}
			Expect(kinds).To(Equal([]string{"boot ", "joined pico1", "master pico1", "role WORKER1"}))
			Expect(f.Timeline()[0].At).To(Equal(900 * time.Millisecond)) // its uptime 0
		})

		It("keeps every pin change once, at the board's own time", func() {
			s := state("pico1", 1, 5000, "pico1", "pico1=MASTER")
			s.PinEvents = []firmware.PinEvent{{Seq: 1, MS: 1000, Pin: 2, Value: 1, Cause: "write"}}
			f.report("pico1", s, 5*time.Second)
			s2 := *s
			s2.UptimeMS = 6000
			s2.PinEvents = append(s.PinEvents, firmware.PinEvent{Seq: 2, MS: 5500, Pin: 2, Value: 0, Cause: "revert"})
			f.report("pico1", &s2, 6*time.Second)
			evs, err := f.PinEvents("pico1", 2)
			Expect(err).NotTo(HaveOccurred())
			Expect(evs).To(Equal([]sim.PinEvent{{At: time.Second, Pin: 2, Value: 1, Cause: "write"}, {At: 5500 * time.Millisecond, Pin: 2, Value: 0, Cause: "revert"}}))
		})
	})

	It("agrees only when every board that is up sees the same members and roles", func() {
		f.report("pico1", state("pico1", 1, 0, "pico1", "pico1=MASTER", "pico2=WORKER1"), 0)
		f.report("pico2", state("pico2", 1, 0, "pico2", "pico2=MASTER"), 0)
		Expect(f.Agreement()).To(MatchError(ContainSubstring("pico2 sees members [pico2#1]")))
		_, agreed := f.AgreedMaster()
		Expect(agreed).To(BeFalse())
		Expect(f.Safety()).To(MatchError(ContainSubstring("2 masters in one component")))

		f.report("pico2", state("pico2", 1, 0, "pico1", "pico1=MASTER", "pico2=WORKER1"), 0)
		Expect(f.Agreement()).To(Succeed())
		m, agreed := f.AgreedMaster()
		Expect(agreed).To(BeTrue())
		Expect(m).To(Equal("pico1"))
	})

	It("counts a board as up only once its radio is on the network", func() {
		onNet := false
		f.onNet = func(string) bool { return onNet }
		f.report("pico1", state("pico1", 1, 0, "pico1", "pico1=MASTER"), 0)
		Expect(f.Up("pico1")).To(BeFalse())
		Expect(f.View("pico1").Role).To(BeEmpty())
		onNet = true
		Expect(f.Up("pico1")).To(BeTrue())
	})

	It("forgets what a board reported once it loses power", func() {
		f.report("pico1", state("pico1", 1, 0, "pico1", "pico1=MASTER"), 0)
		f.setPowered("pico1", false)
		Expect(f.Up("pico1")).To(BeFalse())
		Expect(f.Pin("pico1", 2)).To(Equal(0))
		f.report("pico1", state("pico1", 1, 0, "pico1", "pico1=MASTER"), 0) // a late poll
		Expect(f.Up("pico1")).To(BeFalse())
	})

	It("keeps the timeline in time order when boards report late", func() {
		f.line("pico1", firmware.Line{MS: 0, Event: firmware.Event{Kind: "boot"}}, 100*time.Millisecond)
		f.line("pico1", firmware.Line{MS: 500, Event: firmware.Event{Kind: "role", Role: "MASTER"}}, 900*time.Millisecond)
		f.line("pico2", firmware.Line{MS: 0, Event: firmware.Event{Kind: "boot"}}, 200*time.Millisecond)
		f.line("pico2", firmware.Line{MS: 100, Event: firmware.Event{Kind: "role", Role: "WORKER1"}}, 350*time.Millisecond)
		var at []time.Duration
		for _, e := range f.Timeline() {
			at = append(at, e.At)
		}
		Expect(at).To(Equal([]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond}))
	})
})

// board answers commands and get_state as a board would, its pin 2 held
// at level.
type fakeConn struct {
	level  int
	uptime int64
}

func (c *fakeConn) Do(line string) (Reply, error) {
	if strings.Contains(line, "get_state") {
		c.uptime += 10
		s := state("pico1", 1, c.uptime, "pico1", "pico1=MASTER")
		s.Pins = []firmware.PinState{{Pin: 2, Mode: "output", Value: c.level}}
		raw, _ := json.Marshal(s)
		var m any
		json.Unmarshal(raw, &m)
		return Reply{Raw: "{}", Fields: map[string]any{"state": m}}, nil
	}
	if strings.Contains(line, "write_pin") {
		c.level = 1
	}
	return Reply{Raw: "{}", Fields: map[string]any{}}, nil
}
func (c *fakeConn) Closed() bool             { return false }
func (c *fakeConn) Close()                   {}
func (c *fakeConn) SetTimeout(time.Duration) {}

var _ = Describe("a control connection the harness watches", func() {
	It("reads the board's state back after each command, so no check judges by an older one", func() {
		f := newFleet("hw", []string{"pico1"}, nil)
		f.setPowered("pico1", true)
		f.report("pico1", state("pico1", 1, 5, "pico1", "pico1=MASTER"), 0) // the last poll: pin 2 low
		c := f.conn("pico1", &fakeConn{uptime: 5}, true)
		_, err := c.Do(`{"action": "write_pin", "pin": 2, "value": 1, "timeout": 5}`)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Pin("pico1", 2)).To(Equal(1))

		f.report("pico1", state("pico1", 1, 5, "pico1", "pico1=MASTER"), time.Second) // a poll sent before the write, answered after
		Expect(f.Pin("pico1", 2)).To(Equal(1), "a late, older report replaced a newer one")
	})
})
