package netsim

import (
	"fmt"
	"net/netip"
	"time"

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
	// softAPStations bounds the stations a soft AP LAN may be built with:
	// past the eight leases, the others wait for one.
	softAPStations = 16
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

// SoftAPLease is how long the soft AP's DHCP server keeps a lease after
// its station last renewed it (MicroPython's dhcpserver.c: 24 hours); a
// station on the network renews it every half of that.
const SoftAPLease = 24 * time.Hour

// lease gives a station of the soft AP its address for the AP's current
// boot, as MicroPython's dhcpserver.c does: the AP keeps its leases in RAM,
// eight of them, each by the station's MAC until it expires. After the AP
// reboots, a station gets the lowest free address from .16 in the order the
// stations join again; a ninth station waits until a lease expires (a day
// after its station left) or the AP forgets them all. The AP's first boot
// gives each of the first eight the address it was built with (board
// order), so runs without an AP reboot keep their addresses. It returns
// the station's old address if it changed, and ok false when no lease is
// free; the caller holds l.mu.
func (l *LAN) lease(h *Host) (old netip.Addr, changed, ok bool) {
	now := l.clock.Now()
	if h.lease == l.apBoots && l.byIP[h.ip] == h && softAPLeased(h.ip) {
		h.leasedAt = now // renewed: the same lease, by its MAC
		return netip.Addr{}, false, true
	}
	if h.lease == 0 && l.apBoots <= 1 && softAPLeased(h.ip) && l.byIP[h.ip] == h {
		h.lease, h.leasedAt = l.apBoots, now
		return netip.Addr{}, false, true
	}
	ip := softAPSubnet.Addr()
	for range softAPBase {
		ip = ip.Next()
	}
	for i := 0; ; i, ip = i+1, ip.Next() {
		if i == SoftAPLeases {
			return netip.Addr{}, false, false
		}
		// A lease of an older boot of the AP is forgotten; a current one
		// is free once it expired: its station is off the network and did
		// not renew it for SoftAPLease.
		if o, ok := l.orphans[ip]; ok {
			if o.apBoot == l.apBoots && now < o.expiry {
				continue // a lease of this station's (or another's) old MAC
			}
			delete(l.orphans, ip)
		}
		holder := l.byIP[ip]
		if holder == nil || holder == h {
			break
		}
		// At the AP's first boot a station not yet joined keeps the
		// address it was built with, while it has power.
		reserved := holder.lease == 0 && l.apBoots <= 1 && holder.powered
		if !reserved && (holder.lease != l.apBoots || ((!holder.powered || !holder.associated) && now >= holder.leaseExpiry())) {
			break
		}
	}
	h.lease, h.leasedAt = l.apBoots, now
	if ip == h.ip {
		return netip.Addr{}, false, true
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
	return old, true, true
}

// noLease is the lease of a station whose MAC is new to the soft AP: not
// one any boot of the AP gave (nor the first boot's reservation, 0).
const noLease = ^uint64(0)

// orphanLease is a soft-AP lease held by a MAC no station has any more.
type orphanLease struct {
	apBoot uint64        // the AP's boot that gave it
	expiry time.Duration // when the AP takes it back
}

// newMAC is NewEachBoot on a soft AP: a station that comes back with
// another MAC. MicroPython's dhcpserver.c finds leases by MAC, so a
// station that keeps its MAC (a Pico W's comes from its chip) gets its
// address back; one whose MAC changes at each boot (a randomised MAC)
// gets the next free lease, and its old one stays taken, by nobody, until
// it expires a day later. Eight leases, so a board that reboots often
// soon finds none. The caller holds l.mu.
func (l *LAN) newMAC(h *Host) {
	if h.lease == l.apBoots && l.byIP[h.ip] == h && softAPLeased(h.ip) {
		if l.orphans == nil {
			l.orphans = map[netip.Addr]orphanLease{}
		}
		l.orphans[h.ip] = orphanLease{apBoot: l.apBoots, expiry: h.leaseExpiry()}
	}
	h.lease = noLease
	delete(l.byMAC, h.mac)
	h.mac = macFor(h.index)
	h.mac = tcpip.LinkAddress([]byte{h.mac[0], h.mac[1], h.mac[2] ^ byte(h.boots-1), h.mac[3], h.mac[4], h.mac[5]})
	l.byMAC[h.mac] = h
}

// softAPLeased reports whether ip is one of the soft AP's eight lease
// addresses (.16 to .23); the placeholder of a station built beyond them
// is not.
func softAPLeased(ip netip.Addr) bool {
	b := ip.As4()
	return softAPSubnet.Contains(ip) && b[3] >= softAPBase && b[3] < softAPBase+SoftAPLeases
}

// leaseExpiry is when the lease of a station that left the network runs
// out: a day after its last renewal (every half day while it was on).
func (h *Host) leaseExpiry() time.Duration {
	on := max(h.leftAt-h.leasedAt, 0)
	renewed := h.leasedAt + on/(SoftAPLease/2)*(SoftAPLease/2)
	return renewed + SoftAPLease
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
