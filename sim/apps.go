package sim

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
)

// appRun drives one app on one board: its sockets, its timer, its ops. Its
// sockets die when the board's network goes down and come back with it; the
// app itself, and its counters, live on.
type appRun struct {
	b        *Board
	app      apps.App
	udp      *netsim.UDPConn
	ln       *netsim.TCPListener
	conns    map[apps.ConnID]*netsim.TCPConn
	accepted apps.ConnID // ids for accepted connections count down from the top
	tick     clock.Timer
	deadline time.Duration
}

// StartApp runs app on a board. An app with the same name is replaced.
func (c *Cluster) StartApp(board string, app apps.App) error {
	b, err := c.board(board)
	if err != nil {
		return err
	}
	c.StopApp(board, app.Name())
	r := &appRun{b: b, app: app, accepted: ^apps.ConnID(0), deadline: -1}
	r.tick = c.clk.AfterFunc(clock.Never, r.onTick)
	b.apps = append(b.apps, r)
	if b.Up() {
		if err := r.up(); err != nil {
			return err
		}
		r.view()
	}
	r.apply()
	return nil
}

// StopApp ends an app on a board.
func (c *Cluster) StopApp(board, name string) {
	b := c.byName[board]
	if b == nil {
		return
	}
	for i, r := range b.apps {
		if r.app.Name() == name {
			r.close()
			r.tick.Stop()
			b.apps = append(b.apps[:i], b.apps[i+1:]...)
			return
		}
	}
}

// App returns the app of that name on a board, or nil.
func (c *Cluster) App(board, name string) apps.App {
	if b := c.byName[board]; b != nil {
		for _, r := range b.apps {
			if r.app.Name() == name {
				return r.app
			}
		}
	}
	return nil
}

// AppStats sums an app's counters over every board that runs it.
func (c *Cluster) AppStats(name string) apps.Stats {
	var s apps.Stats
	for _, b := range c.boards {
		for _, r := range b.apps {
			if r.app.Name() == name {
				st := r.app.Stats()
				s.Attempts += st.Attempts
				s.Successes += st.Successes
				s.Sent += st.Sent
				s.Received += st.Received
				s.Errors += st.Errors
				s.Crashed = s.Crashed || st.Crashed
			}
		}
	}
	return s
}

// up opens the app's sockets on the board's current stack.
func (r *appRun) up() error {
	tcpPort, udpPort := r.app.Ports()
	h := r.b.host
	r.conns = map[apps.ConnID]*netsim.TCPConn{}
	if udpPort != 0 {
		conn, err := h.ListenUDP(udpPort, func() { r.b.c.clk.Post(0, clock.Func(r.drainUDP)) })
		if err != nil {
			return fmt.Errorf("app %s on %s: %w", r.app.Name(), r.b.name, err)
		}
		r.udp = conn
	}
	if tcpPort != 0 {
		ln, err := h.ListenTCP(tcpPort, r.accept)
		if err != nil {
			return fmt.Errorf("app %s on %s: %w", r.app.Name(), r.b.name, err)
		}
		r.ln = ln
	}
	return nil
}

// close closes the app's sockets on a running stack.
func (r *appRun) close() {
	if r.ln != nil {
		r.ln.Close()
	}
	if r.udp != nil {
		r.udp.Close()
	}
	for id, conn := range r.conns {
		delete(r.conns, id)
		conn.Close()
	}
	r.down()
}

// down forgets sockets that died with the stack, telling the app.
func (r *appRun) down() {
	now := r.b.c.clk.Now()
	for id := range r.conns {
		r.app.Closed(now, id)
	}
	r.conns, r.udp, r.ln = nil, nil, nil
}

func (r *appRun) now() time.Duration { return r.b.c.clk.Now() }

func (r *appRun) onTick() {
	if !r.b.Up() || r.b.asleep() {
		r.tick.Reset(time.Second) // look again later
		return
	}
	r.app.Tick(r.now())
	r.apply()
}

func (r *appRun) drainUDP() {
	if r.udp == nil {
		return
	}
	for {
		p, from, ok := r.udp.ReadFrom()
		if !ok {
			break
		}
		if !r.b.asleep() {
			r.app.Datagram(r.now(), node.Addr(from.Addr().As4()), p)
		}
	}
	r.apply()
}

func (r *appRun) accept(conn *netsim.TCPConn) {
	id := r.accepted
	r.accepted--
	r.watch(id, conn)
	r.app.Accepted(r.now(), id, node.Addr(conn.RemoteAddr().Addr().As4()))
	r.apply()
}

func (r *appRun) watch(id apps.ConnID, conn *netsim.TCPConn) {
	r.conns[id] = conn
	conn.OnData = func(p []byte) {
		r.app.Data(r.now(), id, p)
		r.apply()
	}
	conn.OnClose = func() {
		if _, ok := r.conns[id]; ok {
			delete(r.conns, id)
			r.app.Closed(r.now(), id)
			r.apply()
		}
	}
}

// view tells the app the board's current view of the cluster.
func (r *appRun) view() {
	n := r.b.node
	if n == nil {
		return
	}
	master, _ := n.Master()
	r.app.View(r.now(), node.Addr(r.b.IP().As4()), master.IP, n.Members())
}

// apply carries out the app's ops and rearms its timer.
func (r *appRun) apply() {
	ops, next := r.app.Ready()
	for _, o := range ops {
		r.do(o)
	}
	r.app.Advance()
	if next != r.deadline {
		r.deadline = next
		r.tick.Reset(next - r.now())
	}
}

func (r *appRun) do(o apps.Op) {
	to := netip.AddrPortFrom(netip.AddrFrom4(o.To), o.Port)
	switch o.Kind {
	case apps.Send:
		if r.udp != nil {
			r.udp.WriteTo(o.Data, to)
		}
	case apps.Dial:
		if r.conns == nil {
			r.b.c.clk.Post(0, clock.Func(func() { r.app.Connected(r.now(), o.Conn, fmt.Errorf("network down")); r.apply() }))
			return
		}
		id := o.Conn
		r.b.host.DialTCP(to, func(conn *netsim.TCPConn, err error) {
			if err == nil && r.conns != nil {
				r.watch(id, conn)
			}
			r.app.Connected(r.now(), id, err)
			r.apply()
		})
	case apps.Write:
		if conn := r.conns[o.Conn]; conn != nil {
			conn.Write(o.Data)
		}
	case apps.Close:
		if conn := r.conns[o.Conn]; conn != nil {
			delete(r.conns, o.Conn)
			conn.Close()
		}
	case apps.SetPin:
		b := r.b
		if b.gpio.Level(o.Pin) != o.Level {
			b.gpio.set(PinEvent{At: r.now(), Pin: o.Pin, Value: o.Level, Cause: "app " + r.app.Name()})
			b.c.record(Event{At: r.now(), Board: b.name, Kind: EvPin, Detail: fmt.Sprintf("GPIO%d = %d (%s)", o.Pin, o.Level, r.app.Name())})
		}
	}
}
