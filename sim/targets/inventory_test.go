package targets

import (
	"os"
	"path/filepath"

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
