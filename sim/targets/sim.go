package targets

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/mac"
	"github.com/picosim/picosim/sim"
)

// Sim is the simulator: virtual boards of package sim on a simulated LAN,
// in simulated time, replayable from the seed.
type Sim struct {
	c *sim.Cluster
	// controllers by name; "" is the default one, the host laptop.
	controllers map[string]*sim.Controller
	desk        *sim.Desktop
	key         []byte
	// intruder is a controller without the key (UnsignedController).
	intruder *sim.Controller
}

var _ Target = (*Sim)(nil)

// NewSim builds the cluster of spec; its boards power on at time 0.
func NewSim(spec Spec) (*Sim, error) {
	if spec.ControlTLS {
		// The simulated boards' control server runs on the simulated LAN's
		// event-driven TCP, where crypto/tls (blocking reads) cannot run.
		return nil, &Unsupported{Target: "sim", Action: "control_tls", Why: "simulated boards serve plain TCP (picosim up --tls terminates TLS in front of them); emulated boards serve TLS"}
	}
	cfg := sim.Config{
		Boards:     len(spec.Boards),
		Names:      spec.Names(),
		Seed:       spec.Seed,
		Link:       spec.Link,
		Settings:   firmware.Settings{Heartbeat: spec.Heartbeat, MissLimit: spec.MissLimit, RevertOnLoss: spec.RevertOnLoss, Key: spec.Key, NoWatchdog: spec.NoWatchdog},
		Radios:     spec.Radios,
		Addressing: spec.Addressing,
		OnEvent:    spec.OnEvent,
	}
	if spec.Radio == netsim.PicoWRadio {
		cfg.Profile = &netsim.PicoW{}
	}
	if spec.SoftAP {
		cfg.SoftAP = cfg.Names[0]
	}
	for _, b := range spec.Boards {
		if len(b.Pins) > 0 {
			if cfg.Pins == nil {
				cfg.Pins = map[string][]firmware.PinSetup{}
			}
			cfg.Pins[b.Name] = b.Pins
		}
	}
	c, err := sim.New(cfg)
	if err != nil {
		return nil, err
	}
	t := &Sim{c: c, key: spec.Key}
	for b, l := range spec.Links {
		if err := c.SetLink(b, l); err != nil {
			return nil, err
		}
	}
	for _, p := range spec.Pairs {
		if err := c.SetLink(p.To, p.Link, p.From); err != nil {
			return nil, err
		}
	}
	if spec.Capture != nil {
		if err := c.StartCapture(spec.Capture); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Cluster returns the simulated cluster.
func (t *Sim) Cluster() *sim.Cluster { return t.c }

func (t *Sim) Kind() string            { return "sim" }
func (t *Sim) Now() time.Duration      { return t.c.Now() }
func (t *Sim) Timeline() sim.Timeline  { return t.c.Timeline() }
func (t *Sim) Close() error            { return t.c.Close() }
func (t *Sim) PowerOff(b string) error { return t.c.PowerOff(b) }
func (t *Sim) PowerOn(b string) error  { return t.c.PowerOn(b) }
func (t *Sim) Heal() error             { t.c.Heal(); return nil }
func (t *Sim) Agreement() error        { return t.c.Agreement() }
func (t *Sim) Safety() error           { return t.c.Safety() }

func (t *Sim) RunUntil(deadline time.Duration, done func() bool) bool {
	if done == nil {
		if deadline > t.c.Now() {
			t.c.Run(deadline - t.c.Now())
		}
		return false
	}
	return t.c.RunUntil(deadline, done)
}

func (t *Sim) Partition(groups ...[]string) error { return t.c.Partition(groups...) }

func (t *Sim) SetLink(b string, l netsim.Link) error { return t.c.SetLink(b, l) }

func (t *Sim) RadioFault(board, fault string) error { return t.c.RadioFault(board, fault) }

func (t *Sim) SetPairLink(from, to string, l netsim.Link) error {
	if _, err := t.board(from); err != nil {
		return err
	}
	return t.c.SetLink(to, l, from)
}

func (t *Sim) Boards() []string {
	var names []string
	for _, b := range t.c.Boards() {
		names = append(names, b.Name())
	}
	return names
}

func (t *Sim) Up(b string) bool      { return t.c.Board(b) != nil && t.c.Board(b).Up() }
func (t *Sim) Powered(b string) bool { return t.c.Board(b) != nil && t.c.Board(b).Powered() }

func (t *Sim) View(b string) firmware.State {
	if bd := t.c.Board(b); bd != nil && bd.Up() {
		return bd.State()
	}
	return firmware.State{Name: b}
}

func (t *Sim) AgreedMaster() (string, bool) {
	m, ok := t.c.AgreedMaster()
	if !ok {
		return "", false
	}
	return m.Name(), true
}

func (t *Sim) Stability(since time.Duration) error { return t.c.Stability(since) }

func (t *Sim) board(name string) (*sim.Board, error) {
	if b := t.c.Board(name); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("no board %q", name)
}

func (t *Sim) Pin(board string, pin int) (int, error) {
	b, err := t.board(board)
	if err != nil {
		return 0, err
	}
	return b.GPIO().Level(pin), nil
}

func (t *Sim) PinEvents(board string, pin int) ([]sim.PinEvent, error) {
	b, err := t.board(board)
	if err != nil {
		return nil, err
	}
	return b.GPIO().PinHistory(pin), nil
}

func (t *Sim) Counter(board, name string) (uint64, error) {
	b, err := t.board(board)
	if err != nil {
		return 0, err
	}
	if v, ok := lanCounter(b.Counters(), name); ok {
		return v, nil
	}
	if !slices.Contains(firmware.StatNames, name) {
		return 0, fmt.Errorf("no counter %q", name)
	}
	return b.State().Stats[name], nil // a board that is down counts nothing
}

func (t *Sim) AppStats(name string, boards ...string) (apps.Stats, error) {
	if len(boards) == 0 {
		return t.c.AppStats(name), nil
	}
	var sum apps.Stats
	for _, n := range boards {
		b, err := t.board(n)
		if err != nil {
			return sum, err
		}
		s, _ := b.AppStats(name)
		sum = sum.Add(s)
	}
	return sum, nil
}

// Controller connects a controller to a board: each name is a host of its
// own on the LAN ("" is laptop, the default), whose earlier connection
// closes.
func (t *Sim) Controller(from, board string) (Conn, error) {
	return connectNamed(&t.controllers, from, board, t.c.NewController)
}

// connectNamed connects the controller named from ("" is the laptop) of a
// simulated LAN to a board, making it (a host of its own) the first time.
func connectNamed(controllers *map[string]*sim.Controller, from, board string, newController func(name string) (*sim.Controller, error)) (Conn, error) {
	if from == "" {
		from = "laptop"
	}
	ct := (*controllers)[from]
	if ct == nil {
		var err error
		if ct, err = newController(from); err != nil {
			return nil, err
		}
		if *controllers == nil {
			*controllers = map[string]*sim.Controller{}
		}
		(*controllers)[from] = ct
	}
	if err := ct.Connect(board); err != nil {
		return nil, err
	}
	return newSimConn(ct), nil
}

var _ Rogue = (*Sim)(nil)

// Forge sends a forged discovery frame from the cluster's rogue host.
func (t *Sim) Forge(f sim.Forgery, count int, every time.Duration) error {
	n, err := t.c.Nemesis()
	if err != nil {
		return err
	}
	return n.ForgeEvery(f, count, every)
}

// Attack starts a hostile control client from the rogue host.
func (t *Sim) Attack(a *sim.Attack) error {
	n, err := t.c.Nemesis()
	if err != nil {
		return err
	}
	return n.Attack(a)
}

// UnsignedController connects a controller without the key, from a host
// named intruder.
func (t *Sim) UnsignedController(board string) (Conn, error) {
	if t.intruder == nil {
		ct, err := t.c.NewController("intruder")
		if err != nil {
			return nil, err
		}
		ct.Key, t.intruder = nil, ct
	}
	if err := t.intruder.Connect(board); err != nil {
		return nil, err
	}
	return newSimConn(t.intruder), nil
}

// simConn is one connection of a controller, which makes one at a time:
// once the controller has connected again (an app step uses the default
// controller too), this one counts as closed.
type simConn struct {
	ct *sim.Controller
	n  int // the controller's connection this is
}

func newSimConn(ct *sim.Controller) *simConn { return &simConn{ct: ct, n: ct.Connections()} }

func (c *simConn) Do(line string) (Reply, error) {
	if c.Closed() {
		return Reply{}, fmt.Errorf("%s: the connection is closed", line)
	}
	r, err := c.ct.Do(line)
	return Reply{Raw: r.Raw, Fields: r.Fields}, err
}
func (c *simConn) Closed() bool { return c.ct.Connections() != c.n || c.ct.Closed() }
func (c *simConn) SetTimeout(d time.Duration) {
	if c.ct.Connections() == c.n {
		c.ct.Timeout = d
	}
}
func (c *simConn) Close() {
	if c.ct.Connections() == c.n {
		c.ct.Close()
	}
}

// Hello plays the desktop client of shared/seeds/003 from a host named
// desktop: broadcast HELLO on UDP 37020, wait for FULL. It is written from
// the wire format alone, as a user's script would be.
func (t *Sim) Hello(within time.Duration, unsigned bool) (Full, error) {
	if t.desk == nil {
		d, err := t.c.NewDesktop("desktop")
		if err != nil {
			return Full{}, err
		}
		t.desk = d
	}
	return helloFrom(t.desk, t.c, within, keyUnless(t.key, unsigned))
}

// helloFrom says HELLO from a desktop client host on a LAN in simulated
// time (c: the LAN's clock, or the cluster that runs it) and returns the
// first FULL that answers within the time given.
func helloFrom(desk *sim.Desktop, c interface {
	Now() time.Duration
	RunUntil(time.Duration, func() bool) bool
}, within time.Duration, key []byte) (Full, error) {
	desk.Forget()
	k, err := newKeyring(key)
	if err != nil {
		return Full{}, err
	}
	// HELLO again every helloRetry until FULL comes, as the emulated and
	// hw targets' client does: one lost frame must not fail the step.
	full := Full{Members: -1}
	for end := c.Now() + within; full.Members < 0 && c.Now() < end; {
		if err := desk.Send(k.seal(desk.IP(), helloFrame), netip.MustParseAddrPort("255.255.255.255:37020")); err != nil {
			return Full{}, err
		}
		c.RunUntil(min(c.Now()+helloRetry, end), func() bool {
			for _, d := range desk.Received() {
				if f, ok := decodeFull(k.open(d.From.Addr(), d.Payload)); ok {
					full = f
					full.From = d.From.Addr().String()
					return true
				}
			}
			return false
		})
	}
	if full.Members < 0 {
		return full, fmt.Errorf("%w within %v", ErrNoFull, within)
	}
	return full, nil
}

// helloRetry is how long the desktop client waits for FULL before it says
// HELLO again.
const helloRetry = 500 * time.Millisecond

// helloFrame is HELLO [1, name_len, name] from the desktop client.
var helloFrame = append([]byte{1, byte(len("DesktopClient"))}, "DesktopClient"...)

// keyring seals the desktop client's HELLO and opens FULLs when the
// cluster is keyed; without a key both pass frames through.
type keyring struct{ m *mac.MAC }

func newKeyring(key []byte) (keyring, error) {
	if len(key) == 0 {
		return keyring{}, nil
	}
	m, err := mac.New(key)
	return keyring{m}, err
}

func (k keyring) seal(from netip.Addr, frame []byte) []byte {
	if k.m == nil {
		return frame
	}
	return node.Seal(k.m, node.Addr(from.Unmap().As4()), append([]byte(nil), frame...))
}

// open returns the frame, or nil when it does not verify.
func (k keyring) open(from netip.Addr, p []byte) []byte {
	if k.m == nil {
		return p
	}
	body, ok := node.Open(k.m, node.Addr(from.Unmap().As4()), p)
	if !ok {
		return nil
	}
	return body
}

// decodeFull returns the member count of a FULL frame [2, count, ...].
func decodeFull(p []byte) (Full, bool) {
	if len(p) < 2 || p[0] != 2 {
		return Full{}, false
	}
	// As the seed's decode_full reads it: ip[4], name_len, name, count
	// times, stopping where the frame does.
	f := Full{Members: int(p[1])}
	for i, off := 0, 2; i < f.Members && off+5 <= len(p); i++ {
		n := int(p[off+4])
		off += 5
		if off+n > len(p) {
			break
		}
		f.Names = append(f.Names, string(p[off:off+n]))
		off += n
	}
	return f, true
}

// StartApp runs an app of node/apps on a board.
func (t *Sim) StartApp(a App) error { return t.c.StartApp(a.Board, a.Spec) }

func (t *Sim) StopApp(board, name string) error { return t.c.StopApp(board, name) }
