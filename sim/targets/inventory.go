package targets

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"

	"github.com/goccy/go-yaml"
	"github.com/picosim/picosim/sim/yamlguard"
)

// Inventory lists a lab's boards: how to reach each one, power it and flash
// it (hack/lab-inventory.example.yaml is an annotated one).
type Inventory struct {
	// Netns, if set, is the network namespace the harness reaches the
	// boards from (picosim lab puts its emulated boards behind one).
	Netns string `yaml:"netns,omitempty"`
	// Broadcast is where the desktop client's HELLO goes. Default
	// 255.255.255.255.
	Broadcast string           `yaml:"broadcast,omitempty"`
	Boards    []InventoryBoard `yaml:"boards"`

	File string `yaml:"-"`
}

// InventoryBoard is one board of a lab.
type InventoryBoard struct {
	Name string `yaml:"name"`
	// Address is the board's IPv4 address; or give its MAC and picosim
	// finds the address from the board's heartbeats and the ARP table.
	Address string `yaml:"address"`
	MAC     string `yaml:"mac,omitempty"`
	// ControlPort is its piconetcontrol port. Default 12345.
	ControlPort uint16 `yaml:"control_port"`
	// PowerOff and PowerOn are shell commands that cut and restore the
	// board's power (uhubctl, a relay); without them power steps are
	// skipped. PICOSIM_BOARD and PICOSIM_ADDRESS are set for them.
	PowerOff string `yaml:"power_off,omitempty"`
	PowerOn  string `yaml:"power_on,omitempty"`
	// Flash is the shell command that writes the firmware to the board
	// (picotool load -x, or a copy to its BOOTSEL drive); hack/flash.sh
	// runs it. PICOSIM_UF2 names the image.
	Flash string `yaml:"flash,omitempty"`
}

// inventoryGuard is what yamlguard allows an inventory file: the same
// bounds as a scenario's, far above a lab's few boards.
var inventoryGuard = yamlguard.Limits{Noun: yamlguard.Noun{A: "an inventory", One: "inventory", Many: "inventories"}}

// LoadInventory reads and checks an inventory file.
//
// yamlguard checks it before go-yaml decodes it: go-yaml crashes on some
// YAML (`boards: !x`) and an alias bomb would take gigabytes.
func LoadInventory(path string) (*Inventory, error) {
	src, err := yamlguard.ReadFile(path, yamlguard.MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	inv, err := decodeInventory(src)
	if err != nil {
		// "inventory lab.yaml:3:5: msg", or "inventory lab.yaml: msg" when
		// it has no place (a yamlguard.Error then prints as its message).
		var e *yamlguard.Error
		if errors.As(err, &e) && e.Line > 0 {
			return nil, fmt.Errorf("inventory %s:%w", path, err)
		}
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	inv.File = path
	return inv, inv.check()
}

// decodeInventory checks src with yamlguard and decodes it. Its errors are
// *yamlguard.Error.
func decodeInventory(src []byte) (inv *Inventory, err error) {
	doc, err := yamlguard.Check(src, inventoryGuard)
	if err != nil {
		return nil, err
	}
	// yamlguard refuses every input known to crash go-yaml; should one
	// still panic in it, the caller gets an error rather than a crash.
	defer func() {
		if r := recover(); r != nil {
			inv, err = nil, &yamlguard.Error{Msg: fmt.Sprintf("the YAML library failed on this input (%v); please report it, with the file", r)}
		}
	}()
	inv = &Inventory{}
	if doc.Body != nil { // an empty file is an empty inventory, which check refuses
		if err := yaml.NodeToValue(doc.Body, inv, yaml.DisallowUnknownField()); err != nil {
			return nil, yamlguard.AsError(err) // without go-yaml's excerpt of the file, quadratic in its line
		}
	}
	return inv, nil
}

func (inv *Inventory) check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("inventory %s: "+format, append([]any{inv.File}, args...)...))
	}
	if len(inv.Boards) == 0 {
		bad("no boards")
	}
	if inv.Broadcast != "" {
		if a, err := netip.ParseAddr(inv.Broadcast); err != nil || !a.Is4() {
			bad("broadcast %q is not an IPv4 address", inv.Broadcast)
		}
	}
	seen := map[string]bool{}
	for i, b := range inv.Boards {
		switch {
		case b.Name == "" || seen[b.Name]:
			bad("board %d needs a name of its own", i+1)
		case b.Address == "" && b.MAC == "":
			bad("board %s needs an address or a mac", b.Name)
		}
		seen[b.Name] = true
		if b.Address != "" {
			if a, err := netip.ParseAddr(b.Address); err != nil || !a.Is4() {
				bad("board %s: address %q is not an IPv4 address", b.Name, b.Address)
			}
		}
		if b.MAC != "" {
			if _, err := net.ParseMAC(b.MAC); err != nil {
				bad("board %s: mac %q: %v", b.Name, b.MAC, err)
			}
		}
		if (b.PowerOff == "") != (b.PowerOn == "") {
			bad("board %s: give power_off and power_on together", b.Name)
		}
	}
	return errors.Join(errs...)
}

// Board returns the named board.
func (inv *Inventory) Board(name string) (InventoryBoard, bool) {
	for _, b := range inv.Boards {
		if b.Name == name {
			return b, true
		}
	}
	return InventoryBoard{}, false
}

// Command prepares one of the board's shell commands (power or flash) to
// run with sh, with PICOSIM_BOARD and PICOSIM_ADDRESS set, and env after
// them (PICOSIM_UF2 for flash).
func (b InventoryBoard) Command(line string, env ...string) *exec.Cmd {
	c := exec.Command("sh", "-c", line)
	c.Env = append(append(os.Environ(), "PICOSIM_BOARD="+b.Name, "PICOSIM_ADDRESS="+b.Address), env...)
	return c
}

// Write saves the inventory as YAML.
func (inv *Inventory) Write(path string) error {
	b, err := yaml.Marshal(inv)
	if err != nil {
		return err
	}
	head := "# picosim lab inventory: picosim run --target hw --inventory " + path + " scenarios/\n"
	return os.WriteFile(path, append([]byte(head), b...), 0o644)
}
