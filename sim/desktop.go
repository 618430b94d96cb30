package sim

import (
	"net/netip"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node"
)

// Desktop is a computer on the boards' LAN with a UDP socket on the
// discovery port, as the desktop client of shared/seeds/003 has: it sends
// what it is given and keeps what it receives, in the cluster's simulated
// time. Whatever speaks the wire format to boards from outside (a HELLO
// client, a fuzzer of frames) is written on top of it.
type Desktop struct {
	host     *netsim.Host
	conn     *netsim.UDPConn
	received []Datagram
}

// Datagram is one UDP datagram a Desktop received.
type Datagram struct {
	From    netip.AddrPort
	Payload []byte
}

// NewDesktop adds a host named name to the LAN.
func (c *Cluster) NewDesktop(name string) (*Desktop, error) { return NewLANDesktop(c.lan, name) }

// NewLANDesktop adds a desktop client host named name to a LAN.
func NewLANDesktop(lan *netsim.LAN, name string) (*Desktop, error) {
	h, err := lan.AddHost(netsim.HostConfig{Name: name})
	if err != nil {
		return nil, err
	}
	d := &Desktop{host: h}
	clk := lan.Clock()
	d.conn, err = h.ListenUDP(node.Port, func() { clk.Post(0, clock.Func(d.drain)) })
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Desktop) drain() {
	for {
		p, from, ok := d.conn.ReadFrom()
		if !ok {
			return
		}
		d.received = append(d.received, Datagram{From: from, Payload: append([]byte(nil), p...)})
	}
}

// Send sends one datagram from the discovery port.
func (d *Desktop) Send(p []byte, to netip.AddrPort) error { return d.conn.WriteTo(p, to) }

// IP is the desktop's address.
func (d *Desktop) IP() netip.Addr { return d.host.IP() }

// Received returns what arrived so far, oldest first.
func (d *Desktop) Received() []Datagram { return d.received }

// Forget drops what was received.
func (d *Desktop) Forget() { d.received = nil }

// Close closes the desktop's socket.
func (d *Desktop) Close() { d.conn.Close() }
