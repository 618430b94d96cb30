package targets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/ctl"
)

// HW runs a scenario on real Pico W boards listed in an inventory, flashed
// with the firmware (firmware/pico-w). The harness reaches them over the
// lab's network: before the scenario it gives every board the scenario's
// settings (name, timings, pins) with the control protocol's update
// action, which also restores the factory image and reboots it, so each
// scenario starts from a fresh boot; during it, it polls each board's
// get_state. Power steps run the inventory's power commands. Real WiFi
// cannot be partitioned or impaired by picosim: those steps are skipped.
type HW struct {
	*fleet
	key     []byte // keyed control (Spec.Key); HW refuses keyed specs today
	inv     *Inventory
	addrs   map[string]netip.AddrPort // control address, by board
	in      func(func() error) error  // runs a dial where the boards are reached: inventory's namespace, or here
	bcast   netip.Addr
	skipped []string
	parked  []string // the inventory's boards this scenario does not use, powered off
	cancel  context.CancelFunc
	polling sync.WaitGroup
}

var _ Target = (*HW)(nil)

// PollStateEvery is how often the hw target asks each board for its state.
const PollStateEvery = 150 * time.Millisecond

// ConfigureTimeout bounds how long a board may take to reboot into a
// scenario's settings.
const ConfigureTimeout = 30 * time.Second

const hwNetWhy = "real boards share one WiFi network that picosim cannot cut or impair; run it on the sim or emulated target"

// NewHW takes the spec's boards from the inventory, configures and reboots
// them, and starts watching them.
func NewHW(spec Spec, inv *Inventory) (*HW, error) {
	if len(spec.Key) > 0 {
		// configure writes each board's settings with an unsigned update:
		// a keyed lab would need its boards flashed with the key first.
		return nil, &Unsupported{Target: "hw", Action: "network.key", Why: "the hw target configures boards over the unsigned protocol; flash the key into a lab's boards and drive them with picosim ctl --key"}
	}
	if spec.ControlTLS {
		return nil, &Unsupported{Target: "hw", Action: "control_tls", Why: noTLSImage}
	}
	h := &HW{inv: inv, addrs: map[string]netip.AddrPort{}, in: here, bcast: netip.AddrFrom4([4]byte{255, 255, 255, 255})}
	h.fleet = newFleet("hw", spec.Names(), spec.OnEvent)
	if inv.Netns != "" {
		h.in = func(f func() error) error { return netsim.InNetns(inv.Netns, f) }
	}
	if inv.Broadcast != "" {
		h.bcast = netip.MustParseAddr(inv.Broadcast)
	}
	var missing []string
	for _, b := range spec.Boards {
		if _, ok := inv.Board(b.Name); !ok {
			missing = append(missing, b.Name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("inventory %s has no board %s (it has %s)", inv.File, strings.Join(missing, ", "), strings.Join(inventoryNames(inv), ", "))
	}
	if err := h.resolve(spec); err != nil {
		return nil, err
	}
	h.noteSkipped(spec)
	if err := h.powerForScenario(spec); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.configure(spec); err != nil {
		h.Close()
		return nil, err
	}
	h.fleet.start = time.Now() // the scenario begins with the boards' fresh boot
	for _, b := range spec.Boards {
		h.fleet.byName[b.Name].powered = true
		h.record(sim.Event{Board: b.Name, Kind: sim.EvPowerOn, IP: h.addrs[b.Name].Addr().String(), Detail: "at " + h.addrs[b.Name].Addr().String() + " (configured and rebooted)"})
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	for name, addr := range h.addrs {
		h.polling.Add(1)
		go func() { defer h.polling.Done(); h.poll(ctx, name, addr) }()
	}
	return h, nil
}

func inventoryNames(inv *Inventory) []string {
	var names []string
	for _, b := range inv.Boards {
		names = append(names, b.Name)
	}
	return names
}

// resolve finds every board's address, and checks that the scenario's
// boards are in address order, as its expectations assume (the lowest
// address is the first master).
func (h *HW) resolve(spec Spec) error {
	byMAC := map[string]string{}
	for _, b := range spec.Boards {
		ib, _ := h.inv.Board(b.Name)
		port := ib.ControlPort
		if port == 0 {
			port = control.Port
		}
		if ib.Address != "" {
			h.addrs[b.Name] = netip.AddrPortFrom(netip.MustParseAddr(ib.Address), port)
			continue
		}
		mac, _ := net.ParseMAC(ib.MAC)
		byMAC[mac.String()] = b.Name
		h.addrs[b.Name] = netip.AddrPortFrom(netip.Addr{}, port)
	}
	if len(byMAC) > 0 {
		found, err := findByMAC(h.in, 5*time.Second)
		if err != nil {
			return err
		}
		for mac, name := range byMAC {
			ip, ok := found[mac]
			if !ok {
				return fmt.Errorf("board %s (mac %s): no heartbeat from it within 5s; give its address in the inventory", name, mac)
			}
			h.addrs[name] = netip.AddrPortFrom(ip, h.addrs[name].Port())
		}
	}
	names := spec.Names()
	for i := 1; i < len(names); i++ {
		a, b := h.addrs[names[i-1]].Addr(), h.addrs[names[i]].Addr()
		if !a.Less(b) {
			var got []string
			for _, n := range names {
				got = append(got, n+" "+h.addrs[n].Addr().String())
			}
			return fmt.Errorf("the scenario names its boards in address order (the first is the lowest address, and the first master), but the inventory has %s", strings.Join(got, ", "))
		}
	}
	return nil
}

// powerForScenario switches off the lab's boards the scenario does not
// use, which would otherwise take part in its cluster, and on the ones it
// does, which the last scenario may have left off.
func (h *HW) powerForScenario(spec Spec) error {
	inSpec := map[string]bool{}
	for _, b := range spec.Boards {
		inSpec[b.Name] = true
	}
	for _, ib := range h.inv.Boards {
		switch {
		case !inSpec[ib.Name] && ib.PowerOff == "":
			return fmt.Errorf("board %s of the inventory is not in the scenario and has no power_off command: it would join the scenario's cluster (give it power commands, or leave it out of the inventory)", ib.Name)
		case !inSpec[ib.Name]:
			if err := h.power(ib.Name, false); err != nil {
				return err
			}
			h.parked = append(h.parked, ib.Name)
		case ib.PowerOn != "":
			if err := h.power(ib.Name, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// noteSkipped lists what of the topology real boards cannot have.
func (h *HW) noteSkipped(spec Spec) {
	skip := func(what string) {
		h.skipped = append(h.skipped, fmt.Sprintf("topology (%s): %s", what, hwNetWhy))
	}
	if spec.Link != (netsim.Link{}) {
		skip("network impairments")
	}
	if len(spec.Links) > 0 || len(spec.Pairs) > 0 {
		skip("per-board and per-pair links")
	}
	if spec.SoftAP {
		skip("soft AP mode")
	}
	if spec.Addressing != netsim.Sticky {
		skip("addressing " + spec.Addressing.String())
	}
	if spec.Capture != nil {
		h.skipped = append(h.skipped, "topology (capture): picosim captures its simulated LAN only; capture real WiFi with a monitor-mode sniffer")
	}
}

// Skipped lists what the target left out of the scenario, and why.
func (h *HW) Skipped() []string { return h.skipped }

// configure gives every board the scenario's settings and the factory
// image with an update, and waits until each has rebooted into them.
func (h *HW) configure(spec Spec) error {
	var wg sync.WaitGroup
	errs := make([]error, len(spec.Boards))
	for i, b := range spec.Boards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.configureBoard(b, spec); err != nil {
				errs[i] = fmt.Errorf("board %s at %s: %w", b.Name, h.addrs[b.Name], err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (h *HW) configureBoard(b BoardSpec, spec Spec) error {
	set := spec.settings(b)
	addr := h.addrs[b.Name]
	var before *firmware.State
	var err error
	// A board just powered on takes a few seconds to join the WiFi.
	for deadline := time.Now().Add(ConfigureTimeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if before, err = h.getState(addr, 0); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("it does not answer get_state within %v (is it flashed with the picosim firmware, and powered?): %w", ConfigureTimeout, err)
	}
	files := control.Obj(control.Field{Key: firmware.FileSettings, Val: control.Str(string(set.JSON()))})
	for name, content := range firmware.DefaultFiles() {
		if name != firmware.FileWLAN { // its credentials are the lab's own
			files.Set(name, control.Str(content))
		}
	}
	update := control.Obj(control.Field{Key: "action", Val: control.Str("update")},
		control.Field{Key: "files", Val: files}, control.Field{Key: "compress", Val: control.Boolean(false)})
	c, err := dialBoard(addr, h.in, 3, 5*time.Second, h.key, false)
	if err != nil {
		return err
	}
	r, err := c.Do(update.String())
	c.Close()
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if r.Err() != "" {
		return fmt.Errorf("update: %s", r.Raw)
	}
	// The timings it reports have node's defaults filled in.
	timings, _ := node.Config{Heartbeat: set.Heartbeat, MissLimit: set.MissLimit}.WithDefaults()
	want := firmware.State{Name: b.Name, HeartbeatMS: float64(timings.Heartbeat) / float64(time.Millisecond), MissLimit: timings.MissLimit}
	deadline := time.Now().Add(ConfigureTimeout)
	var last *firmware.State
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond) // a reboot takes a second or more: no need to ask sooner
		s, err := h.getState(addr, 0)
		if err != nil {
			continue
		}
		last = s
		if s.Incarnation != before.Incarnation && s.Name == want.Name && s.HeartbeatMS == want.HeartbeatMS && s.MissLimit == want.MissLimit {
			return nil
		}
	}
	return fmt.Errorf("it did not come back with the scenario's settings within %v (last state: %+v)", ConfigureTimeout, last)
}

// getState asks a board for its state on a connection of its own.
func (h *HW) getState(addr netip.AddrPort, retries int) (*firmware.State, error) {
	c, err := dialBoard(addr, h.in, retries, 2*time.Second, h.key, false)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return askState(c)
}

func askState(c Conn) (*firmware.State, error) {
	r, err := c.Do(`{"action": "get_state"}`)
	if err != nil {
		return nil, err
	}
	if r.Err() != "" {
		return nil, fmt.Errorf("get_state: %s", r.Raw)
	}
	raw, _ := json.Marshal(r.Fields["state"])
	var s firmware.State
	if err := json.Unmarshal(raw, &s); err != nil || s.Name == "" {
		return nil, fmt.Errorf("get_state: no state in %s", r.Raw)
	}
	return &s, nil
}

// poll asks a board for its state every PollStateEvery on a connection it
// keeps; a board that stops answering for a second is taken for down.
func (h *HW) poll(ctx context.Context, board string, addr netip.AddrPort) {
	var c Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	lastOK := time.Now()
	lost, seen := false, false // seen: it answered since it was last powered on
	tick := time.NewTicker(PollStateEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !h.Powered(board) {
			if c != nil {
				c.Close()
				c = nil
			}
			lastOK, lost, seen = time.Now(), false, false
			continue
		}
		var s *firmware.State
		var err error
		if c == nil {
			c, err = dialBoard(addr, h.in, 0, time.Second, h.key, false)
		}
		if err == nil {
			if s, err = askState(c); err != nil {
				c.Close()
				c = nil
			}
		}
		if err != nil {
			if seen && !lost && time.Since(lastOK) > time.Second && h.Powered(board) {
				lost = true
				h.down(board, sim.Event{Kind: "unreachable", Detail: err.Error()})
			}
			continue
		}
		lastOK, lost, seen = time.Now(), false, true
		h.report(board, s, h.Now())
	}
}

// power runs a board's power command.
func (h *HW) power(board string, on bool) error {
	ib, _ := h.inv.Board(board)
	cmd, what := ib.PowerOff, "power_off"
	if on {
		cmd, what = ib.PowerOn, "power_on"
	}
	if cmd == "" {
		return &Unsupported{Target: "hw", Action: what, Why: fmt.Sprintf("board %s has no %s command in the inventory", board, what)}
	}
	if a, ok := h.addrs[board]; ok {
		ib.Address = a.Addr().String() // found from its MAC
	}
	if out, err := ib.Command(cmd).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %q: %v: %s", what, board, cmd, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (h *HW) PowerOff(board string) error {
	if err := h.power(board, false); err != nil {
		return err
	}
	h.setPowered(board, false)
	h.record(sim.Event{Board: board, Kind: sim.EvPowerOff, Detail: "(power command)"})
	return nil
}

func (h *HW) PowerOn(board string) error {
	if err := h.power(board, true); err != nil {
		return err
	}
	h.setPowered(board, true)
	h.record(sim.Event{Board: board, Kind: sim.EvPowerOn, IP: h.addrs[board].Addr().String(), Detail: "(power command)"})
	return nil
}

func (h *HW) Partition(groups ...[]string) error {
	return &Unsupported{Target: "hw", Action: "partition", Why: hwNetWhy}
}

func (h *HW) Heal() error {
	return &Unsupported{Target: "hw", Action: "heal", Why: hwNetWhy}
}

func (h *HW) SetLink(board string, l netsim.Link) error {
	return &Unsupported{Target: "hw", Action: "set_link", Why: hwNetWhy}
}

func (h *HW) RadioFault(board, fault string) error {
	return &Unsupported{Target: "hw", Action: "radio_fault", Why: "a real board's radio fails by itself; picosim cannot make it"}
}

func (h *HW) SetPairLink(from, to string, l netsim.Link) error {
	return &Unsupported{Target: "hw", Action: "set_link", Why: hwNetWhy}
}

// keyUnless is the key a desktop client signs with: none when unsigned.
func keyUnless(key []byte, unsigned bool) []byte {
	if unsigned {
		return nil
	}
	return key
}

func (h *HW) Counter(board, name string) (uint64, error) {
	if _, ok := lanCounter(netsim.Counters{}, name); ok {
		return 0, &Unsupported{Target: "hw", Action: "counter " + name, Why: "the LAN's counters exist on the sim and emulated targets; a board counts only what its firmware sees"}
	}
	return h.nodeCounter(board, name)
}

func (h *HW) Controller(from, board string) (Conn, error) {
	addr, ok := h.addrs[board]
	if !ok {
		return nil, fmt.Errorf("no board %q", board)
	}
	c, err := dialBoard(addr, h.in, 3, 10*time.Second, h.key, false)
	if err != nil {
		return nil, err
	}
	return h.conn(board, c, true), nil
}

func (h *HW) Hello(within time.Duration, unsigned bool) (Full, error) {
	return hello(within, h.bcast, h.in, keyUnless(h.key, unsigned), netip.Addr{})
}

// Close stops watching the boards and powers the lab's other boards on
// again.
func (h *HW) Close() error {
	if h.cancel != nil {
		h.cancel()
		h.polling.Wait()
		h.cancel = nil
	}
	var errs []error
	for _, b := range h.parked {
		if err := h.power(b, true); err != nil {
			errs = append(errs, err)
		}
	}
	h.parked = nil
	return errors.Join(errs...)
}

// findByMAC listens for heartbeats, makes the kernel resolve each sender's
// MAC, and reads the ARP table: MAC to address.
func findByMAC(in func(func() error) error, wait time.Duration) (map[string]netip.Addr, error) {
	found := map[string]netip.Addr{}
	err := in(func() error {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{Port: node.Port})
		if err != nil {
			return fmt.Errorf("listen for heartbeats: %w", err)
		}
		defer pc.Close()
		senders := map[netip.Addr]bool{}
		pc.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if n > 0 && node.Type(buf[0]) == node.TypeHeartbeat {
				senders[from.Addr().Unmap()] = true
			}
		}
		for ip := range senders {
			pc.WriteToUDPAddrPort([]byte{0}, netip.AddrPortFrom(ip, 9)) // the discard port: only the ARP matters
		}
		time.Sleep(300 * time.Millisecond) // let the kernel's ARP requests be answered
		arp, err := os.ReadFile("/proc/thread-self/net/arp")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(arp), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) >= 4 {
				if ip, err := netip.ParseAddr(f[0]); err == nil && senders[ip] {
					if mac, err := net.ParseMAC(f[3]); err == nil {
						found[mac.String()] = ip
					}
				}
			}
		}
		return nil
	})
	return found, err
}

// here runs f in this process's own network namespace: where the
// harness reaches boards when no namespace is named.
func here(f func() error) error { return f() }

// dialBoard opens a control connection to addr with retries, each connect
// and reply bounded by timeout; in runs the dial where it must happen
// (inside a namespace, or here).
func dialBoard(addr netip.AddrPort, in func(func() error) error, retries int, timeout time.Duration, key []byte, useTLS bool) (Conn, error) {
	opt := ctl.Options{Timeout: timeout, Retries: retries, Key: key, TLS: useTLS}
	if retries == 0 {
		opt.Retries = -1
	}
	opt.Dial = func(ctx context.Context, network, a string) (conn net.Conn, err error) {
		if rerr := in(func() error { conn, err = (&net.Dialer{}).DialContext(ctx, network, a); return nil }); rerr != nil {
			return nil, rerr
		}
		return conn, err
	}
	c, err := ctl.Dial(context.Background(), addr.String(), opt)
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

func (t *HW) StartApp(a App) error             { return startApp(t, a) }
func (t *HW) StopApp(board, name string) error { return stopApp(t, board, name) }
