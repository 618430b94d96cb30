package targets

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("an inventory", func() {
	write := func(body string) string {
		path := filepath.Join(GinkgoT().TempDir(), "lab.yaml")
		Expect(os.WriteFile(path, []byte(body), 0o644)).To(Succeed())
		return path
	}

	It("reads the annotated example of hack/", func() {
		inv, err := LoadInventory("../../hack/lab-inventory.example.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(inv.Boards).NotTo(BeEmpty())
		for _, b := range inv.Boards {
			Expect(b.PowerOff).NotTo(BeEmpty(), b.Name)
			Expect(b.Flash).NotTo(BeEmpty(), b.Name)
		}
	})

	It("names every problem at once", func() {
		_, err := LoadInventory(write(`
broadcast: 192.168.1.999
boards:
  - name: pico1
    address: 10.0.0.300
  - name: pico1
    mac: 28:cd:c1
  - name: pico3
    power_off: uhubctl -a off
`))
		Expect(err).To(MatchError(And(
			ContainSubstring(`broadcast "192.168.1.999" is not an IPv4 address`),
			ContainSubstring(`board pico1: address "10.0.0.300" is not an IPv4 address`),
			ContainSubstring("board 2 needs a name of its own"),
			ContainSubstring("board pico3 needs an address or a mac"),
			ContainSubstring("board pico3: give power_off and power_on together"),
		)))
	})

	It("refuses a field it does not know, saying where", func() {
		_, err := LoadInventory(write("boards:\n  - name: pico1\n    adress: 10.0.0.2\n"))
		Expect(err).To(MatchError(And(ContainSubstring("adress"), ContainSubstring("3:5"))))
	})

	// Hostile YAML: go-yaml crashed on a tag (a nil dereference in
	// decodeSlice), and nesting, alias bombs and huge files took it
	// gigabytes. Each is refused at its place, having cost little.
	DescribeTable("refuses hostile YAML without crashing, saying where, cheaply",
		func(body func() string, want string) {
			path := write(body())
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			_, err := LoadInventory(path)
			runtime.ReadMemStats(&m1)
			Expect(err).To(MatchError("inventory " + path + want))
			Expect(m1.TotalAlloc-m0.TotalAlloc).To(BeNumerically("<", 50<<20), "bytes allocated")
		},
		Entry("a tag", func() string { return "boards: !x\n" },
			`:1:9: tag !x: inventories use no YAML tags; write the value without it (quote it, as "12", to make it a string)`),
		Entry("an alias bomb", func() string {
			// Nine anchors, each aliasing the one before ten times: 10^8
			// boards.
			b := "b0: &b0 {name: pico1, address: 10.0.0.2}\n"
			for i := 1; i < 9; i++ {
				b += "b" + strconv.Itoa(i) + ": &b" + strconv.Itoa(i) + " [" + strings.Repeat("*b"+strconv.Itoa(i-1)+", ", 9) + "*b" + strconv.Itoa(i-1) + "]\n"
			}
			return b + "boards: *b8\n"
		}, ":6:10: aliases expand to more than 100000 nodes; an inventory needs far fewer (alias bomb?)"),
		Entry("deep nesting", func() string {
			return "boards: " + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + "\n"
		}, ":1:74: nested more than 64 levels deep; an inventory needs far fewer"),
		Entry("a 10 MiB file", func() string {
			return "boards:\n" + strings.Repeat("  - {name: pico1, address: 10.0.0.2}\n", 10<<20/37)
		}, ": more than 64 KiB: an inventory file is at most that"),
	)

	It("places go-yaml's errors without quoting the file", func() {
		path := write("boards:\n  - name: pico1\n    adress: 10.0.0.2\n")
		_, err := LoadInventory(path)
		Expect(err).To(MatchError("inventory " + path + `:3:5: unknown field "adress"`))
	})

	It("reads back what a lab writes", func() {
		in := &Inventory{Netns: "picosim-1-1-laptop", Broadcast: "192.168.1.255",
			Boards: []InventoryBoard{{Name: "pico1", Address: "192.168.1.2", ControlPort: 12345, PowerOff: "x off", PowerOn: "x on"}}}
		path := filepath.Join(GinkgoT().TempDir(), "lab.yaml")
		Expect(in.Write(path)).To(Succeed())
		out, err := LoadInventory(path)
		Expect(err).NotTo(HaveOccurred())
		out.File = ""
		Expect(out).To(Equal(in))
	})
})
