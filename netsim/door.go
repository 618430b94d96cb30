package netsim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"

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
	// Netns is the namespace to create; it must not exist yet.
	Netns string
	// Name is the door's host name on the LAN. Default "door".
	Name string
	// Device is the TAP interface's name. Default "picosim0".
	Device string
	// IP is the namespace's address; default the next free one.
	IP netip.Addr
	// Up and Down are the door host's links, as any host's.
	Up, Down Link
}

// Door is an open door; Close removes the device and the namespace.
type Door struct {
	lan  *LAN
	host *Host
	file *os.File
	cfg  DoorConfig
	done chan struct{}
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
	h, err := l.AddHost(HostConfig{Name: cfg.Name, IP: cfg.IP, Up: cfg.Up, Down: cfg.Down, Off: true})
	if err != nil {
		return nil, err
	}
	d := &Door{lan: l, host: h, cfg: cfg, done: make(chan struct{})}
	if err := d.open(); err != nil {
		d.cleanup()
		return nil, fmt.Errorf("netsim: door %s: %w", cfg.Netns, err)
	}
	go d.read()
	return d, nil
}

func (d *Door) open() error {
	// Namespace calls act on the calling thread: keep to one, and put it
	// back where it was.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	ns, err := netns.NewNamed(d.cfg.Netns)
	if err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	defer ns.Close()
	if err := netns.Set(orig); err != nil {
		return err
	}

	fd, err := tun.OpenTAP(d.cfg.Device)
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
	d.host.powered = true
	l.mu.Unlock()
	return nil
}

// read carries frames from the namespace onto the LAN.
func (d *Door) read() {
	defer close(d.done)
	buf := make([]byte, 65536)
	for {
		n, err := d.file.Read(buf)
		if err != nil {
			return // closed
		}
		d.lan.transmit(d.host, append([]byte(nil), buf[:n]...))
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

func (d *Door) cleanup() error {
	err := netns.DeleteNamed(d.cfg.Netns)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
