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
		s, err := sim.FailoverRun{
			Cluster:  sim.Config{Boards: 5, Seed: 41, Link: netsim.Link{Loss: 0.1}, NoTimeline: true},
			KillAt:   10 * time.Second,
			Duration: 20 * time.Second,
			Capture:  out,
		}.Run()
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Passed()).To(BeTrue())

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
		Expect(types["1"]).To(BeNumerically(">=", 4), "HELLO frames")
		Expect(types["2"]).To(BeNumerically(">=", 1), "FULL frames")
		Expect(types["3"]).To(BeNumerically(">=", 50), "heartbeats")
		Expect(comments).To(BeNumerically(">", 0), "frames marked as not delivered")
	})
})
