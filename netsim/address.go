package netsim

import (
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Addressing is how the router (or the soft AP) gives out addresses, with
// DHCP's semantics: a host keeps its lease, or gets a new one.
type Addressing uint8

const (
	// Sticky: a host keeps its address, reboot after reboot (a router that
	// remembers leases by MAC). The default.
	Sticky Addressing = iota
	// NewEachBoot: every power-on leases the next free address, so a board's
	// address changes when it reboots: "the server's IP changed".
	NewEachBoot
	// NewAtExpiry: the address changes when the lease (Config.Lease) ends,
	// while the host runs.
	NewAtExpiry
)

// The soft AP of a Pico W (MicroPython's shared/netutils/dhcpserver.c, as in
// pico-examples): the AP is 192.168.4.1 and leases 192.168.4.16 onward, at
// most 8 at a time, for 24 hours.
const (
	softAPBase   = 16
	SoftAPLeases = 8
)

// softAPSubnet is the network of a Pico W soft AP.
var softAPSubnet = netip.MustParsePrefix("192.168.4.0/24")

// nextFree returns the next host address no one holds, starting after
// l.next; the caller holds l.mu.
func (l *LAN) nextFree() (netip.Addr, bool) {
	start := l.next
	for {
		a := l.next
		l.next = l.next.Next()
		if !l.cfg.Subnet.Contains(l.next) || l.next == l.bcast {
			l.next = l.router.Next() // wrap around
		}
		if l.byIP[a] == nil && l.cfg.Subnet.Contains(a) && a != l.bcast && a != l.router {
			return a, true
		}
		if l.next == start {
			return netip.Addr{}, false
		}
	}
}

// lease gives a station of the soft AP its address for the AP's current
// boot, as MicroPython's dhcpserver.c does: the AP keeps its leases in RAM,
// so after it reboots a station gets the lowest free address from .16 in
// the order the stations join again, not the one it had. The AP's first
// boot gives each the address it was built with (board order), so runs
// without an AP reboot keep their addresses. It returns the station's old
// address if it changed; the caller holds l.mu.
func (l *LAN) lease(h *Host) (old netip.Addr, changed bool) {
	if h.lease == l.apBoots {
		return netip.Addr{}, false
	}
	first := h.lease == 0 && l.apBoots <= 1
	h.lease = l.apBoots
	if first {
		return netip.Addr{}, false
	}
	ip := softAPSubnet.Addr()
	for range softAPBase {
		ip = ip.Next()
	}
	for {
		holder := l.byIP[ip]
		// A holder of an older boot's lease is off the network (the AP's
		// reboot dropped every station): its address is free to lease.
		if holder == nil || holder == h || holder.lease != l.apBoots {
			break
		}
		ip = ip.Next()
	}
	if ip == h.ip {
		return netip.Addr{}, false
	}
	old = h.ip
	if l.byIP[old] == h {
		delete(l.byIP, old)
	}
	h.ip = ip
	l.byIP[ip] = h
	if h.stack != nil && h.powered {
		l.renumberStack(h.stack, old, ip)
	}
	return old, true
}

// renumber gives h a new address; the caller holds l.mu. It reports the old
// address, or false when none was free.
func (l *LAN) renumber(h *Host) (netip.Addr, bool) {
	ip, ok := l.nextFree()
	if !ok {
		return netip.Addr{}, false
	}
	old := h.ip
	delete(l.byIP, old)
	h.ip = ip
	l.byIP[ip] = h
	if h.stack != nil && h.powered {
		l.renumberStack(h.stack, old, ip)
	}
	return old, true
}

// renumberStack moves a stack from one address to another.
func (l *LAN) renumberStack(s *stack.Stack, old, ip netip.Addr) {
	s.RemoveAddress(nicID, tcpip.AddrFrom4(old.As4()))
	s.AddProtocolAddress(nicID, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(ip.As4()), PrefixLen: l.cfg.Subnet.Bits()}}, stack.AddressProperties{})
}

// scheduleExpiry renumbers h when its lease ends; the caller holds l.mu.
func (l *LAN) scheduleExpiry(h *Host) {
	if l.cfg.Addressing != NewAtExpiry {
		return
	}
	gen := h.gen
	l.clock.AfterFunc(l.cfg.Lease, func() {
		l.mu.Lock()
		if h.gen != gen || !h.powered {
			l.mu.Unlock()
			return
		}
		old, ok := l.renumber(h)
		l.scheduleExpiry(h)
		on := l.cfg.OnAddress
		l.mu.Unlock()
		if ok && on != nil {
			on(h, old)
		}
	})
}

// IP returns the host's current address; it changes only with Addressing
// other than Sticky.
func (h *Host) IP() netip.Addr {
	h.lan.mu.Lock()
	defer h.lan.mu.Unlock()
	return h.ip
}

// apDown reports whether the LAN is a soft AP that is off; the caller holds
// l.mu.
func (l *LAN) apDown() bool {
	return l.ap != nil && (!l.ap.powered || (l.ap.profile != nil && !l.ap.associated))
}

// apChanged runs when the soft AP host powers on or off: its stations lose
// the network with it and join again after it; the caller holds l.mu.
func (l *LAN) apChanged(up bool) []func() {
	var notes []func()
	on := l.cfg.OnAssociation
	if up {
		l.apBoots++
	}
	for _, h := range l.hosts {
		if h == l.ap || !h.powered || h.profile == nil {
			continue
		}
		if up {
			h.join()
			continue
		}
		if h.associated {
			h.associated = false // a join in progress fails too: see join
			l.shape++
			if on != nil {
				host := h
				notes = append(notes, func() { on(host, false) })
			}
		}
	}
	return notes
}

// validateAddressing checks the LAN's addressing settings.
func (c *Config) validateAddressing() error {
	switch {
	case c.Addressing > NewAtExpiry:
		return fmt.Errorf("netsim: unknown addressing %d", c.Addressing)
	case c.Addressing == NewAtExpiry && c.Lease <= 0:
		return fmt.Errorf("netsim: addressing new-at-expiry needs a lease time")
	}
	return nil
}
