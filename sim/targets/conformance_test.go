package targets

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/control"
)

// One board program on every target: the same entries, run on simulated
// boards and on emulated ones (the firmware as Linux processes), must give
// the same verdicts, since both run firmware.Program.

// conformant opens a two-board cluster of a kind, settled.
func conformant(kind string) Target {
	GinkgoHelper()
	spec := Spec{Seed: 1, Heartbeat: 250 * time.Millisecond, Radio: netsim.IdealRadio,
		Boards: []BoardSpec{{Name: "pico1"}, {Name: "pico2"}}}
	var t Target
	var err error
	switch kind {
	case "sim":
		t, err = NewSim(spec)
	case "emulated":
		needNamespaces()
		t, err = NewEmulated(spec, EmulatedConfig{Log: GinkgoWriter})
	}
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(t.Close)
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			AddReportEntry("timeline", t.Timeline().String())
		}
	})
	within(t, 20*time.Second, t.Agreement)
	return t
}

// within runs the target until check passes, for at most d (simulated or
// wall time, as the target keeps it).
func within(t Target, d time.Duration, check func() error) {
	GinkgoHelper()
	var last error
	if !t.RunUntil(t.Now()+d, func() bool { last = check(); return last == nil }) {
		Fail(fmt.Sprintf("not within %v: %v", d, last))
	}
}

func send(c Conn, cmd string) Reply {
	GinkgoHelper()
	r, err := c.Do(cmd)
	Expect(err).NotTo(HaveOccurred(), cmd)
	Expect(r.Err()).To(BeEmpty(), "reply to %s: %s", cmd, r.Raw)
	return r
}

// rebooted waits until a board is back up as a new incarnation.
func rebooted(t Target, board string, was uint32) firmware.State {
	GinkgoHelper()
	var s firmware.State
	within(t, 20*time.Second, func() error {
		if s = t.View(board); !t.Up(board) || s.Incarnation <= was {
			return fmt.Errorf("%s not back yet (incarnation %d)", board, s.Incarnation)
		}
		return nil
	})
	return s
}

var conformance = []struct {
	name  string
	check func(Target)
}{
	{"answers every control action as documented, get_state and the app actions included", func(t Target) {
		c, err := t.Controller("", "pico2")
		Expect(err).NotTo(HaveOccurred())
		Expect(send(c, `{"action": "ping", "time_sent": 1}`).Fields).To(HaveKey("time_received"))
		Expect(send(c, `{"action": "get_version"}`).Fields).To(HaveKeyWithValue("version", control.Version))
		for _, a := range []string{"get_info", "get_resource_info"} {
			Expect(send(c, `{"action": "`+a+`"}`).Fields["info"]).To(HaveKey("mem_free"))
		}
		var listed []string
		for _, a := range send(c, `{"action": "list_actions"}`).Fields["actions"].([]any) {
			listed = append(listed, a.(string))
		}
		Expect(listed).To(Equal(append(slices.Clone(control.Actions), "get_state", "start_app", "stop_app")))
		send(c, `{"action": "setup_pin", "pin": 3, "mode": "output", "value": 0}`)
		send(c, `{"action": "write_pin", "pin": 3, "value": 1, "timeout": 1}`)
		Expect(send(c, `{"action": "read_pin", "pin": 3}`).Fields["value"]).To(BeEquivalentTo(1))
		within(t, 3*time.Second, func() error {
			if v, _ := t.Pin("pico2", 3); v != 0 {
				return fmt.Errorf("GPIO3 is %d", v)
			}
			return nil
		})
		raw, _ := json.Marshal(send(c, `{"action": "get_state"}`).Fields["state"])
		var s firmware.State
		Expect(json.Unmarshal(raw, &s)).To(Succeed())
		Expect(s.Name).To(Equal("pico2"))
		Expect(s.Role).To(Equal("WORKER1"))
		Expect(s.Master).To(Equal("pico1"))
		Expect(s.Members).To(HaveLen(2))
		Expect(s.LED).To(Equal("active"), "a controller is connected")
		r, err := c.Do(`{"action": "dance"}`)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Err()).To(Equal(`unknown action "dance", use "list_actions" to list available actions`))
		send(c, `{"action": "start_app", "app": "bus", "interval_ms": 200}`)
		r, err = c.Do(`{"action": "stop_app", "app": "rgb-server"}`)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Err()).To(ContainSubstring("no app rgb-server is running"))
		send(c, `{"action": "stop_app", "app": "bus"}`)
	}},
	{"takes pins and timings from a settings update, after the reboot it causes", func(t Target) {
		c, err := t.Controller("", "pico2")
		Expect(err).NotTo(HaveOccurred())
		was := t.View("pico2").Incarnation
		set := firmware.Settings{Name: "pico2", Heartbeat: 300 * time.Millisecond, Pins: []firmware.PinSetup{{Pin: 4, Output: true, Value: 1}}}
		files, _ := json.Marshal(map[string]string{firmware.FileSettings: string(set.JSON())})
		send(c, `{"action": "update", "files": `+string(files)+`, "compress": false}`)
		s := rebooted(t, "pico2", was)
		Expect(s.HeartbeatMS).To(Equal(300.0))
		Expect(s.Pins).To(ContainElement(firmware.PinState{Pin: 4, Mode: "output", Value: 1}))
		within(t, 20*time.Second, t.Agreement)
	}},
	{"rolls back an update whose image crashes at boot", func(t Target) {
		c, err := t.Controller("", "pico2")
		Expect(err).NotTo(HaveOccurred())
		was := t.View("pico2").Incarnation
		send(c, `{"action": "update", "files": {"main.py": "`+firmware.CrashMarker+`", "VERSION": "9.9.9"}, "compress": false}`)
		s := rebooted(t, "pico2", was)
		Expect(s.Version).To(Equal(control.Version))
		var kinds []string
		for _, e := range t.Timeline() {
			if e.Board == "pico2" {
				kinds = append(kinds, e.Kind)
			}
		}
		Expect(kinds).To(ContainElements(firmware.EvUpdate, firmware.EvBootFail, firmware.EvRollback))
	}},
	{"runs the apps of node/apps", func(t Target) {
		Expect(t.StartApp(App{Board: "pico1", Spec: apps.Spec{App: "echo-server"}})).To(Succeed())
		Expect(t.StartApp(App{Board: "pico2", Spec: apps.Spec{App: "echo-client", Server: "pico1", Interval: 200 * time.Millisecond}})).To(Succeed())
		within(t, 20*time.Second, func() error {
			st, err := t.AppStats("echo-client")
			if err != nil || st.Successes < 5 {
				return fmt.Errorf("echo client %+v %v", st, err)
			}
			return nil
		})
		Expect(t.StopApp("pico2", "echo-client")).To(Succeed())
	}},
	{"blinks idle without a controller and active with one", func(t Target) {
		Expect(t.View("pico1").LED).To(Equal("idle"))
		c, err := t.Controller("", "pico1")
		Expect(err).NotTo(HaveOccurred())
		send(c, `{"action": "ping"}`)
		Expect(t.View("pico1").LED).To(Equal("active"))
	}},
}

var _ = Describe("one board program on every target", func() {
	for _, kind := range []string{"sim", "emulated"} {
		var labels Labels
		if kind == "emulated" {
			labels = Label("emulated")
		}
		Context("on "+kind+" boards", labels, func() {
			for _, c := range conformance {
				It(c.name, func() { c.check(conformant(kind)) })
			}
		})
	}
})
