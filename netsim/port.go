package netsim

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// port is a host's attachment to the LAN: the link endpoint under its stack's
// Ethernet layer. Outbound frames go to the LAN; inbound frames come from the
// LAN through deliver.
type port struct {
	host       *Host
	mtu        uint32
	mac        tcpip.LinkAddress
	dispatcher stack.NetworkDispatcher
}

var _ stack.LinkEndpoint = (*port)(nil)

func (p *port) MTU() uint32                                  { return p.mtu }
func (p *port) SetMTU(mtu uint32)                            { p.mtu = mtu }
func (p *port) MaxHeaderLength() uint16                      { return 0 }
func (p *port) LinkAddress() tcpip.LinkAddress               { return p.mac }
func (p *port) SetLinkAddress(a tcpip.LinkAddress)           { p.mac = a }
func (p *port) Capabilities() stack.LinkEndpointCapabilities { return 0 }
func (p *port) Attach(d stack.NetworkDispatcher)             { p.dispatcher = d }
func (p *port) IsAttached() bool                             { return p.dispatcher != nil }
func (p *port) Wait()                                        {}
func (p *port) ARPHardwareType() header.ARPHardwareType      { return header.ARPHardwareNone }
func (p *port) AddHeader(*stack.PacketBuffer)                {}
func (p *port) ParseHeader(*stack.PacketBuffer) bool         { return true }
func (p *port) Close()                                       {}
func (p *port) SetOnCloseAction(func())                      {}

// WritePackets hands each frame, Ethernet header included, to the LAN. The
// stack keeps ownership of the packets, so the bytes are copied.
func (p *port) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		frame := make([]byte, 0, pkt.Size())
		for _, s := range pkt.AsSlices() {
			frame = append(frame, s...)
		}
		p.host.lan.transmit(p.host, frame)
	}
	return pkts.Len(), nil
}
