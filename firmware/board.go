package firmware

import (
	"sort"
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// Board is what the program needs of the hardware. Each adapter implements
// it; calls come from the adapter's own loop, never concurrently.
type Board interface {
	// Listen opens a port of the program's, if it is not open yet: UDP
	// datagrams to it go to Program.Datagram, TCP connections to it to
	// Program.Opened. The program listens on every port it needs each time
	// it joins the network.
	Listen(p Port) error
	// Unlisten closes a port (an app stopped); its connections stay.
	Unlisten(p Port) error
	// SendUDP sends one datagram from one of the program's UDP ports.
	SendUDP(from uint16, to node.Addr, port uint16, payload []byte) error
	// Dial opens TCP connection c (DialBase and up) to to:port; its outcome
	// goes to Program.Connected, later or from within Dial.
	Dial(c control.ConnID, to node.Addr, port uint16) error
	// Write sends data on a connection without blocking. When the
	// connection would owe its peer more than MaxBacklog bytes (written,
	// not yet acknowledged), the adapter drops it at once and returns
	// ErrCutOff; the program then forgets it.
	Write(c control.ConnID, data []byte) error
	// Close closes a connection after what was written on it.
	Close(c control.ConnID) error
	// Peer is the IPv4 address at the other end of a connection (zero if
	// unknown): the control server holds a slot for other hosts than the
	// one that has the rest.
	Peer(c control.ConnID) node.Addr
	// SetPin drives a GPIO the program set up as an output, or the on-board
	// LED when pin is control.LED (on a Pico W it hangs off the radio chip).
	SetPin(pin, value int)
	// ReadPin samples a GPIO set up as an input.
	ReadPin(pin int) int
	// Console prints one line, without its "\n", on the board's console.
	Console(line []byte)
	// Rejoin leaves the WiFi network and joins it again, after the call
	// returns (never from within it): the watchdog's way out of a radio
	// that says it is joined and delivers nothing. Lost and Joined follow
	// as for any loss of the network.
	Rejoin() error
}

// Dozer is a Board whose radio is told when the program sleeps and wakes
// (light sleep): the simulator's radio then holds the frames for a board
// whose chip does not wake it (netsim.PicoW.NoWakeOnWLAN). A board whose
// radio wakes its CPU, as a Pico W's does, need not implement it.
type Dozer interface {
	Doze(d time.Duration)
	Wake()
}

// Port is a port the program listens on.
type Port struct {
	TCP bool // else UDP
	Num uint16
}

// DialBase is the first id of the connections the program dials; the
// adapter numbers the connections it accepts below it.
const DialBase control.ConnID = 1 << 31

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
