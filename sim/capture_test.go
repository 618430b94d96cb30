package sim_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/simtest"
)

// tshark is installed by `make tools` (part of `make test`); a developer
// without it gets a skip, CI a failure.
func tsharkPath() string {
	GinkgoHelper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") != "" {
			Fail("tshark is not installed: `make tools` installs it")
		}
		Skip("tshark is not installed: run `make tools`")
	}
	return path
}

var _ = Describe("a capture of a failover", func() {
	It("opens in tshark, which finds HELLO, FULL and heartbeat frames and the drops", func() {
		tshark := tsharkPath()
		file := filepath.Join(GinkgoT().TempDir(), "failover.pcapng")
		out, err := os.Create(file)
		Expect(err).NotTo(HaveOccurred())
		c := newCluster(sim.Config{Boards: 5, Seed: 41, Link: netsim.Link{Loss: 0.1}})
		Expect(c.StartCapture(out)).To(Succeed())
		Eventually(simtest.Within(c, 2*c.FailoverBound(), c.Agreement)).Should(Succeed())
		c.Run(5 * time.Second)
		Expect(c.PowerOff("pico1")).To(Succeed())
		Eventually(simtest.Within(c, c.FailoverBound(), c.Agreement)).Should(Succeed())
		// A worker reboots into the running cluster: it asks the registry
		// with HELLO and gets FULL.
		Expect(c.PowerOff("pico4")).To(Succeed())
		c.Run(time.Second)
		Expect(c.PowerOn("pico4")).To(Succeed())
		Eventually(simtest.Within(c, 2*c.FailoverBound(), c.Agreement)).Should(Succeed())
		c.Run(2 * time.Second)
		Expect(c.StopCapture()).To(Succeed())

		dissector, err := filepath.Abs("../hack/picosim-discovery.lua")
		Expect(err).NotTo(HaveOccurred())
		cmd := exec.Command(tshark, "-X", "lua_script:"+dissector, "-r", file, "-T", "fields", "-e", "picosim.type", "-e", "frame.comment")
		raw, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", raw)
		types := map[string]int{}
		comments := 0
		for _, line := range strings.Split(string(raw), "\n") {
			typ, comment, _ := strings.Cut(line, "\t")
			types[typ]++
			if strings.HasPrefix(comment, "not delivered: ") || strings.HasPrefix(comment, "dropped: ") {
				comments++
			}
		}
		Expect(types["1"]).To(BeNumerically(">=", 1), "HELLO frames")
		Expect(types["2"]).To(BeNumerically(">=", 1), "FULL frames")
		Expect(types["3"]).To(BeNumerically(">=", 50), "heartbeats")
		Expect(comments).To(BeNumerically(">", 0), "frames marked as not delivered")
	})
})
