package targets

import (
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/picosim/picosim/netsim"
)

var _ = Describe("the hw target on a lab of emulated boards", Label("hw"), func() {
	spec := func(boards ...string) Spec {
		s := Spec{Seed: 1, Heartbeat: 250 * time.Millisecond, Radio: netsim.IdealRadio}
		for _, b := range boards {
			s.Boards = append(s.Boards, BoardSpec{Name: b})
		}
		return s
	}

	It("switches off the lab's boards a scenario does not use, and on again after", func() {
		needNamespaces()
		socket := filepath.Join(GinkgoT().TempDir(), "power.sock")
		lab, err := NewLab(spec("pico1", "pico2", "pico3"), EmulatedConfig{Log: GinkgoWriter}, socket)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		power, err := PowerCommand(socket)
		Expect(err).NotTo(HaveOccurred())
		inv := lab.Inventory(power)

		h, err := NewHW(spec("pico1", "pico2"), inv)
		Expect(err).NotTo(HaveOccurred())
		Expect(lab.Powered("pico3")).To(BeFalse(), "pico3 would join the scenario's cluster")
		Eventually(h.Agreement).Should(Succeed())
		Expect(h.View("pico2").Members).To(HaveLen(2))
		Expect(h.View("pico2").Members[0].Incarnation).To(Equal(uint32(2)), "configured and rebooted")

		Expect(h.Close()).To(Succeed())
		Expect(lab.Powered("pico3")).To(BeTrue())
	})

	It("refuses a lab board it cannot switch off", func() {
		needNamespaces()
		socket := filepath.Join(GinkgoT().TempDir(), "power.sock")
		lab, err := NewLab(spec("pico1", "pico2"), EmulatedConfig{Log: GinkgoWriter}, socket)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		inv := lab.Inventory("true")
		inv.Boards[1].PowerOff, inv.Boards[1].PowerOn = "", ""
		_, err = NewHW(spec("pico1"), inv)
		Expect(err).To(MatchError(ContainSubstring("board pico2 of the inventory is not in the scenario and has no power_off command")))
	})
})
