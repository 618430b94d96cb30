package firmware

import (
	"sort"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// Board is what the program needs of the hardware. Each adapter implements
// it; calls come from the adapter's own loop, never concurrently.
type Board interface {
	// SendUDP sends one datagram from the discovery port (node.Port).
	SendUDP(to node.Addr, port uint16, payload []byte) error
	// Write sends data on a control connection.
	Write(c control.ConnID, data []byte) error
	// Close closes a control connection after what was written on it.
	Close(c control.ConnID) error
	// SetPin drives a GPIO the program set up as an output, or the on-board
	// LED when pin is control.LED (on a Pico W it hangs off the radio chip).
	SetPin(pin, value int)
	// ReadPin samples a GPIO set up as an input.
	ReadPin(pin int) int
	// Console prints one line, without its "\n", on the board's console.
	Console(line []byte)
}

// Flash is a board's persistent storage: whole files by name.
type Flash interface {
	ReadFile(name string) ([]byte, bool)
	WriteFile(name string, data []byte) error
	Remove(name string) error
}

// MemFlash is a Flash in memory: the simulator's boards, and tests.
type MemFlash map[string][]byte

var _ Flash = MemFlash(nil)

func (m MemFlash) ReadFile(name string) ([]byte, bool) {
	b, ok := m[name]
	return b, ok
}

func (m MemFlash) WriteFile(name string, data []byte) error {
	m[name] = append([]byte(nil), data...)
	return nil
}

func (m MemFlash) Remove(name string) error {
	delete(m, name)
	return nil
}

// Names lists the files in name order.
func (m MemFlash) Names() []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
