package sim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/simtest"
)

// needRoot skips outside CI when the machine cannot make namespaces; in CI
// (root, iproute2 from `make tools`) it must work.
func needRoot() {
	GinkgoHelper()
	_, ipErr := exec.LookPath("ip")
	if os.Geteuid() != 0 || ipErr != nil {
		if os.Getenv("CI") != "" {
			Fail("the door needs root and iproute2 in CI")
		}
		Skip("the door needs root and the ip command")
	}
}

// needPython skips without python3, and returns it.
func needPython() string {
	GinkgoHelper()
	python, err := exec.LookPath("python3")
	if err != nil {
		Skip("python3 is not installed")
	}
	return python
}

// openDoor opens a door for the spec into a namespace of its own and runs
// the cluster paced at speed, both until the spec ends.
func openDoor(c *sim.Cluster, cfg netsim.DoorConfig, speed float64) *netsim.Door {
	GinkgoHelper()
	door, err := c.OpenDoor(cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(door.Close()).To(Succeed()) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.RunPaced(ctx, speed); close(done) }()
	DeferCleanup(func() { cancel(); <-done })
	return door
}

var _ = Describe("a door for host tools", func() {
	It("lets a program run with ip netns exec broadcast HELLO and get FULL from the registry", func() {
		needRoot()
		python := needPython()
		c := newCluster(sim.Config{Boards: 3, Seed: 51})
		ns := fmt.Sprintf("picosim-t%d", os.Getpid())
		openDoor(c, netsim.DoorConfig{Netns: ns, Device: "psim-t0"}, 10)

		client, err := filepath.Abs("../hack/desktop_client.py")
		Expect(err).NotTo(HaveOccurred())
		out, err := exec.Command("ip", "netns", "exec", ns, python, client, "--timeout", "20").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		var got struct {
			Registry string
			Peers    map[string]string
		}
		Expect(json.Unmarshal(out, &got)).To(Succeed(), "%s", out)
		Expect(got.Registry).To(Equal("192.168.1.2"))
		Expect(got.Peers).To(Equal(map[string]string{"192.168.1.2": "pico1", "192.168.1.3": "pico2", "192.168.1.4": "pico3"}))
	})
})

// Seed 003's own desktop script, run unchanged on the LAN (testdata has it
// with its indentation back), keeps its peer map fresh: it says HELLO once
// and, hearing heartbeats, never again, so the registry must tell it of the
// board that joins later (issue 16).
var _ = Describe("seed 003's desktop script", func() {
	It("sees a board that joins after it started", func() {
		needRoot()
		python := needPython()
		c := newCluster(sim.Config{Boards: 4, Seed: 53})
		Expect(c.PowerOff("pico4")).To(Succeed())
		ns := fmt.Sprintf("picosim-s%d", os.Getpid())
		openDoor(c, netsim.DoorConfig{Netns: ns, Device: "psim-s0"}, 10)

		script, err := filepath.Abs("testdata/seed003_desktop.py")
		Expect(err).NotTo(HaveOccurred())
		var out simtest.SyncBuffer
		cmd := exec.Command("ip", "netns", "exec", ns, python, "-u", script) // -u: lines as they come
		cmd.Stdout, cmd.Stderr = &out, &out
		Expect(cmd.Start()).To(Succeed())
		DeferCleanup(func() { cmd.Process.Kill(); cmd.Wait() })

		Eventually(out.String, "20s", "50ms").Should(ContainSubstring("'192.168.1.4': 'pico3'}"), "the first FULL")
		Expect(out.String()).NotTo(ContainSubstring("192.168.1.5"))
		powered := make(chan error, 1)
		c.Later(0, func() { powered <- c.PowerOn("pico4") })
		Expect(<-powered).To(Succeed())
		Eventually(out.String, "30s", "50ms").Should(ContainSubstring("'192.168.1.5': 'pico4'"), "the late joiner")
	})
})

var _ = Describe("a door flooded from its namespace", Label("hostile"), func() {
	It("drops what the LAN cannot play, counts it, and keeps memory bounded", func() {
		needRoot()
		python := needPython()
		c := newCluster(sim.Config{Boards: 3, Seed: 52})
		ns := fmt.Sprintf("picosim-f%d", os.Getpid())
		// A tenth of DoorRate: under the load of make test the door's
		// reader itself fell below 20,000 frames a second, so the kernel
		// dropped the flood before the door could count it.
		const rate = netsim.DoorRate / 10
		door := openDoor(c, netsim.DoorConfig{Netns: ns, Device: "psim-f0", Rate: rate}, 1)

		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		// Two seconds of broadcast datagrams as fast as Python sends them.
		flood := `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
end, n = time.time() + 2, 0
while time.time() < end:
    try:
        s.sendto(b"x" * 64, ("192.168.1.255", 9)); n += 1
    except OSError:
        pass
print(n)`
		out, err := exec.Command("ip", "netns", "exec", ns, python, "-c", flood).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		var sent int
		fmt.Sscan(string(out), &sent)
		Eventually(func() uint64 { return door.Host().Counters().Overflow }, "5s", "50ms").Should(BeNumerically(">", 0),
			"%d datagrams in 2 s, none dropped at %d a second", sent, rate)
		var after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		AddReportEntry("door flood", map[string]any{"sent": sent, "overflow": door.Host().Counters().Overflow,
			"heap_growth_MiB": (float64(after.HeapInuse) - float64(before.HeapInuse)) / (1 << 20)})
		Expect(after.HeapInuse).To(BeNumerically("<", before.HeapInuse+64<<20))
	})
})
