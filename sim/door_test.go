package sim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
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

var _ = Describe("a door for host tools", func() {
	It("lets a program run with ip netns exec broadcast HELLO and get FULL from the registry", func() {
		needRoot()
		python, err := exec.LookPath("python3")
		if err != nil {
			Skip("python3 is not installed")
		}
		c := newCluster(sim.Config{Boards: 3, Seed: 51})
		ns := fmt.Sprintf("picosim-t%d", os.Getpid())
		door, err := c.OpenDoor(netsim.DoorConfig{Netns: ns, Device: "psim-t0"})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(door.Close()).To(Succeed()) })

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.RunPaced(ctx, 10); close(done) }()
		DeferCleanup(func() { cancel(); <-done })

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
