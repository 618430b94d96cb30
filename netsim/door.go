package netsim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/tun"
)

// DoorConfig describes a door: a TAP device in a network namespace of the
// host machine, attached to the LAN as one more host, so that ordinary
// programs run in that namespace (ip netns exec NAME ...) exchange real
// frames with the simulated boards, through the same impairments.
type DoorConfig struct {
	// Netns is the namespace to create. It must not exist yet, unless it is
	// a stale one of netsim's: made by a process no longer running (killed
	// before it could clean up), which is deleted first and Log told. Any
	// other namespace of that name is left alone, and OpenDoor fails with a
	// *NamespaceTakenError.
	Netns string
	// Name is the door's host name on the LAN. Default "door".
	Name string
	// Device is the TAP interface's name. Default "picosim0".
	Device string
	// Inner, if set, renames the device once it is inside the namespace
	// (every emulated board calls its interface wlan0).
	Inner string
	// IP is the namespace's address; default the next free one.
	IP netip.Addr
	// Up and Down are the door host's links, as any host's.
	Up, Down Link
	// Profile gives the door host a Pico W radio, as any host's: frames
	// wait for power-save beacons, and none pass until it has joined.
	Profile *PicoW
	// Rate bounds the frames a second the door takes from its namespace;
	// default DoorRate.
	Rate float64
	// Log, if set, hears what the door did that its caller did not ask
	// for: "removed stale namespace NAME left by process PID (not
	// running)".
	Log func(string)
}

// Door is an open door; Close removes the device and the namespace.
type Door struct {
	lan   *LAN
	host  *Host
	file  *os.File
	cfg   DoorConfig
	done  chan struct{}
	owned bool // the door made its namespace, and so may delete it
}

// OpenDoor creates the namespace and the TAP device, gives the device the
// door's address and a default route through the LAN's router, and starts
// carrying frames. It needs root (CAP_NET_ADMIN). While a door is open, run
// the LAN's clock in paced time (RunPaced): programs outside live in
// wall-clock time.
func (l *LAN) OpenDoor(cfg DoorConfig) (*Door, error) {
	if cfg.Netns == "" {
		return nil, errors.New("netsim: a door needs a namespace name")
	}
	if cfg.Name == "" {
		cfg.Name = "door"
	}
	if cfg.Device == "" {
		cfg.Device = "picosim0"
	}
	h, err := l.AddHost(HostConfig{Name: cfg.Name, IP: cfg.IP, Up: cfg.Up, Down: cfg.Down, Off: true, Profile: cfg.Profile})
	if err != nil {
		return nil, err
	}
	d := &Door{lan: l, host: h, cfg: cfg, done: make(chan struct{})}
	if err := d.open(); err != nil {
		if d.file != nil {
			// A TAP device not yet moved into the namespace would stay
			// on the host while the file is open.
			d.file.Close()
		}
		d.cleanup()
		return nil, fmt.Errorf("netsim: door %s: %w", cfg.Netns, err)
	}
	go d.read()
	return d, nil
}

func (d *Door) open() error {
	// From here on the namespace is the door's to delete (cleanup), and
	// only from here: one that was there before is not (see netns.go).
	ns, err := claimNamespace(d.cfg.Netns, d.cfg.Log)
	if err != nil {
		return err
	}
	d.owned = true
	defer ns.Close()

	// The TAP file is not to be inherited by the processes picosim starts
	// (emulated boards): the device lives while any process holds it open.
	// tun.OpenTAP does not open it close-on-exec, so no fork may come
	// between the open and the flag, as in package syscall.
	syscall.ForkLock.RLock()
	fd, err := tun.OpenTAP(d.cfg.Device)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return fmt.Errorf("open TAP %s: %w", d.cfg.Device, err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil { // so that Close ends a pending Read
		syscall.Close(fd)
		return err
	}
	d.file = os.NewFile(uintptr(fd), d.cfg.Device)
	link, err := netlink.LinkByName(d.cfg.Device)
	if err != nil {
		return err
	}
	mac := link.Attrs().HardwareAddr
	if err := netlink.LinkSetNsFd(link, int(ns)); err != nil {
		return fmt.Errorf("move %s into %s: %w", d.cfg.Device, d.cfg.Netns, err)
	}

	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer nh.Close()
	in, err := nh.LinkByName(d.cfg.Device)
	if err != nil {
		return err
	}
	if d.cfg.Inner != "" {
		if err := nh.LinkSetName(in, d.cfg.Inner); err != nil {
			return fmt.Errorf("rename %s to %s: %w", d.cfg.Device, d.cfg.Inner, err)
		}
	}
	l := d.lan
	prefix := netip.PrefixFrom(d.host.ip, l.cfg.Subnet.Bits())
	addr, err := netlink.ParseAddr(prefix.String())
	if err != nil {
		return err
	}
	if err := nh.AddrAdd(in, addr); err != nil {
		return fmt.Errorf("address %v: %w", prefix, err)
	}
	if err := nh.LinkSetUp(in); err != nil {
		return err
	}
	if lo, err := nh.LinkByName("lo"); err == nil {
		nh.LinkSetUp(lo)
	}
	// A default route, or sending to 255.255.255.255 fails with "network
	// is unreachable".
	gw := net.IP(l.router.AsSlice())
	if err := nh.RouteAdd(&netlink.Route{LinkIndex: in.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("default route via %v: %w", gw, err)
	}

	l.mu.Lock()
	delete(l.byMAC, d.host.mac)
	d.host.mac = tcpip.LinkAddress(mac)
	l.byMAC[d.host.mac] = d.host
	d.host.door = d
	l.mu.Unlock()
	return d.host.PowerOn()
}

// PowerOff takes the door's host off the LAN, as a board that loses power:
// frames to it are lost, and so is whatever its namespace still sends (a
// killed process's sockets would say goodbye; a board without power says
// nothing).
func (d *Door) PowerOff() { d.host.PowerOff() }

// PowerOn puts the door's host back on the LAN, with the namespace's
// neighbour (ARP) cache emptied, as a board that boots knows no one. With a
// Pico W radio it joins the network again first.
func (d *Door) PowerOn() error {
	err := d.inNetns(func(h *netlink.Handle) error {
		link, err := h.LinkByName(d.device())
		if err != nil {
			return err
		}
		neigh, err := h.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, n := range neigh {
			h.NeighDel(&n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("netsim: door %s: flush neighbours: %w", d.cfg.Netns, err)
	}
	return d.host.PowerOn()
}

func (d *Door) device() string {
	if d.cfg.Inner != "" {
		return d.cfg.Inner
	}
	return d.cfg.Device
}

// inNetns calls f with a netlink handle inside the door's namespace.
func (d *Door) inNetns(f func(*netlink.Handle) error) error {
	ns, err := netns.GetFromName(d.cfg.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return f(h)
}

// Run calls f on a thread inside the door's namespace: the sockets f opens
// and the processes it starts live there, on the LAN.
func (d *Door) Run(f func() error) error { return InNetns(d.cfg.Netns, f) }

// InNetns calls f on a thread inside the named network namespace: sockets
// f opens and processes it starts live there (a socket keeps its namespace
// wherever it is used afterwards; a process is born in its parent thread's).
func InNetns(name string, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	ns, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netsim: namespace %s: %w", name, err)
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netsim: enter %s: %w", name, err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread stays in the namespace: keep it locked, and Go ends
		// it with this goroutine rather than reuse it.
		return fmt.Errorf("netsim: leave %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// DoorRate bounds the frames a door takes from its namespace per wall
// second, with bursts of as many: a program flooding the TAP device (a
// rogue on the LAN, or a runaway script) must not queue deliveries faster
// than the simulation can play them, which would grow memory without end.
// A Pico W's radio moves a few thousand frames a second; beyond the bound
// frames are dropped and counted as the door's overflow, as a busy NIC's.
const DoorRate = 20000

// read carries frames from the namespace onto the LAN.
func (d *Door) read() {
	defer close(d.done)
	buf := make([]byte, 65536)
	rate := d.cfg.Rate
	if rate <= 0 {
		rate = DoorRate
	}
	tokens, last := rate, time.Now()
	for {
		n, err := d.file.Read(buf)
		if err != nil {
			return // closed
		}
		now := time.Now()
		tokens = min(rate, tokens+now.Sub(last).Seconds()*rate)
		last = now
		if tokens < 1 {
			d.lan.mu.Lock()
			d.host.counters.Overflow++
			d.lan.mu.Unlock()
			continue
		}
		tokens--
		if d.host.Powered() {
			d.lan.transmit(d.host, append([]byte(nil), buf[:n]...))
		}
	}
}

// write hands a frame from the LAN to the namespace.
func (d *Door) write(frame []byte) {
	d.file.Write(frame) // a full device queue drops it, as a busy NIC would
}

// Host returns the door's host on the LAN.
func (d *Door) Host() *Host { return d.host }

// Netns returns the namespace's name.
func (d *Door) Netns() string { return d.cfg.Netns }

// Close removes the TAP device and the namespace.
func (d *Door) Close() error {
	d.lan.mu.Lock()
	d.host.powered = false
	d.host.door = nil
	d.lan.mu.Unlock()
	if d.file != nil {
		d.file.Close()
		<-d.done
	}
	return d.cleanup()
}

// cleanup deletes the namespace if the door made it, and never one that
// was there before: OpenDoor calls it when it fails, whatever the reason.
func (d *Door) cleanup() error {
	if !d.owned {
		return nil
	}
	d.owned = false
	err := DeleteNamespace(d.cfg.Netns)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
