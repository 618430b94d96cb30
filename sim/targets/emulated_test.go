package targets

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
)

// inode identifies a namespace: a process is in a named namespace when its
// /proc/PID/ns/net is the same file as /var/run/netns/NAME.
func inode(path string) uint64 {
	GinkgoHelper()
	info, err := os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	return info.Sys().(*syscall.Stat_t).Ino
}

// namespaces lists the named namespaces that start with prefix.
func namespaces(prefix string) []string {
	entries, _ := os.ReadDir("/var/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func newEmulated(boards ...string) *Emulated {
	GinkgoHelper()
	needNamespaces()
	spec := Spec{Seed: 1, Heartbeat: 250 * time.Millisecond, Radio: netsim.IdealRadio}
	for _, b := range boards {
		spec.Boards = append(spec.Boards, BoardSpec{Name: b})
	}
	t, err := NewEmulated(spec, EmulatedConfig{Log: GinkgoWriter})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(t.Close)
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			AddReportEntry("timeline", t.Timeline().String())
		}
	})
	return t
}

var _ = Describe("emulated boards", Label("emulated"), func() {
	It("are one firmware process per board, each in its own network namespace, and leave nothing behind", func() {
		t := newEmulated("pico1", "pico2", "pico3")
		pids := map[int]bool{}
		for _, b := range t.Boards() {
			pid := t.PID(b)
			Expect(pid).To(BeNumerically(">", 0))
			pids[pid] = true
			Expect(inode(fmt.Sprintf("/proc/%d/ns/net", pid))).To(Equal(inode("/var/run/netns/"+t.Netns(b))), "%s's process runs in %s", b, t.Netns(b))
		}
		Expect(pids).To(HaveLen(3))
		Eventually(t.Agreement).Should(Succeed())
		Expect(t.View("pico3").Role).To(MatchRegexp("^WORKER[12]$"))

		Expect(t.Close()).To(Succeed())
		for pid := range pids {
			Expect(alive(pid)).To(BeFalse(), "process %d outlived the target", pid)
		}
		Expect(namespaces(t.prefix)).To(BeEmpty())
		Expect(t.cfg.Dir).NotTo(BeADirectory())
	})

	It("kill the master's process when it loses power, and the others agree on a new master", func() {
		t := newEmulated("pico1", "pico2", "pico3")
		Eventually(t.Agreement).Should(Succeed())
		pid := t.PID("pico1")
		Expect(t.PowerOff("pico1")).To(Succeed())
		Expect(alive(pid)).To(BeFalse())
		Expect(t.PID("pico1")).To(BeZero())
		killed := t.Now()
		Eventually(func() string { m, _ := t.AgreedMaster(); return m }).Should(Equal("pico2"))
		Expect(t.Now()-killed).To(BeNumerically("<", 5*(250*time.Millisecond)+time.Second), "within k+2 heartbeats, and the polling")

		Expect(t.PowerOn("pico1")).To(Succeed())
		Expect(t.PID("pico1")).NotTo(Equal(pid))
		Eventually(func() string { m, _ := t.AgreedMaster(); return m }).Should(Equal("pico1"))
		Expect(t.View("pico2").Members[0].Incarnation).To(Equal(uint32(2)), "pico1 came back as a new incarnation")
	})

	It("put the LAN's impairments on the processes' real sockets", func() {
		t := newEmulated("pico1", "pico2")
		Eventually(t.Agreement).Should(Succeed())
		Expect(t.SetLink("pico2", netsim.Link{Loss: 1})).To(Succeed())
		Eventually(func() []firmware.MemberState { return t.View("pico2").Members }).Should(HaveLen(1))
		Expect(t.Counter("pico2", "lost")).To(BeNumerically(">", 0))
		Expect(t.SetLink("pico2", netsim.Link{})).To(Succeed())
		Eventually(t.Agreement).Should(Succeed())
	})

	It("report a board whose firmware dies by itself", func() {
		t := newEmulated("pico1")
		Eventually(func() bool { return t.Up("pico1") }).Should(BeTrue())
		Expect(syscall.Kill(t.PID("pico1"), syscall.SIGKILL)).To(Succeed())
		Eventually(func() bool { return t.Up("pico1") }).Should(BeFalse())
		Expect(t.Timeline().Of("exit")).To(HaveLen(1))
		Expect(t.Timeline().Of("exit")[0].Detail).To(ContainSubstring("signal: killed"))
	})

	It("are all closed by CloseAll, as picosim does when interrupted", func() {
		t := newEmulated("pico1", "pico2")
		pid := t.PID("pico2")
		CloseAll()
		Expect(alive(pid)).To(BeFalse())
		Expect(namespaces(t.prefix)).To(BeEmpty())
	})

	It("sweep away the namespaces of a picosim that was killed before it could clean up", func() {
		needNamespaces()
		stale := fmt.Sprintf("%s%d-sweep-pico1", NamespacePrefix, os.Getpid())
		DeferCleanup(func() { netsim.DeleteNamespace(stale) })
		// This test binary, as a picosim that makes the namespace and is
		// then killed with SIGKILL: no cleanup.
		picosim := exec.Command(os.Args[0])
		picosim.Env = append(os.Environ(), makeNamespaceEnv+"="+stale)
		out := gbytes.NewBuffer()
		picosim.Stdout, picosim.Stderr = out, GinkgoWriter
		Expect(picosim.Start()).To(Succeed())
		DeferCleanup(func() { picosim.Process.Kill(); picosim.Wait() })
		Eventually(out).Should(gbytes.Say("ready"))
		Expect(SweepNamespaces()).NotTo(ContainElement(stale), "its picosim is running")
		Expect(namespaces(stale)).To(ConsistOf(stale))

		Expect(picosim.Process.Kill()).To(Succeed())
		picosim.Wait()
		Expect(SweepNamespaces()).To(ContainElement(stale))
		Expect(namespaces(stale)).To(BeEmpty())
	})

	It("leave a namespace of a picosim-like name alone if picosim did not make it", func() {
		needNamespaces()
		foreign := NamespacePrefix + "4999999-1-pico1" // no such process, but no owner record either
		Expect(exec.Command("ip", "netns", "add", foreign).Run()).To(Succeed())
		DeferCleanup(func() { exec.Command("ip", "netns", "delete", foreign).Run() })
		Expect(SweepNamespaces()).NotTo(ContainElement(foreign))
		Expect(namespaces(foreign)).To(ConsistOf(foreign))
	})
})
