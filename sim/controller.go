package sim

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/sim/ctl"
)

// Controller is a piconetcontrol client on a host of its own on the
// simulated LAN, as a laptop on the same WiFi would be. It runs in the
// cluster's simulated time: Do sends a command and runs the cluster until the
// reply is in.
type Controller struct {
	clk     *clock.Virtual
	addr    func(board string) (netip.AddrPort, error) // a board's control server
	host    *netsim.Host
	conn    *netsim.TCPConn
	buf     []byte
	replies []Reply
	closed  bool
	// Key signs what Do sends (keyed control); NewController sets the
	// cluster's. Set it to nil for a controller without the key.
	Key    []byte
	signer control.Signer // this connection's, once get_nonce answered
	last   string         // the last line Do sent, as it went on the wire
	conns  int            // connections made so far
	// Timeout bounds how long Do waits for a reply (0: ControlTimeout).
	Timeout time.Duration
}

// Reply is one reply line as the controller received it.
type Reply struct {
	At     time.Duration  // simulated time of arrival
	Raw    string         // the line, without its "\n"
	Fields map[string]any // decoded
}

// Err returns the reply's error message, if it is an error reply.
func (r Reply) Err() string {
	s, _ := r.Fields["error"].(string)
	return s
}

// NewController adds a host named name to the LAN.
func (c *Cluster) NewController(name string) (*Controller, error) {
	return NewLANController(c.lan, name, c.cfg.Settings.Key, func(board string) (netip.AddrPort, error) {
		b, err := c.board(board)
		if err != nil {
			return netip.AddrPort{}, err
		}
		return b.ControlAddr(), nil
	})
}

// NewLANController adds a controller host named name to a LAN whose boards
// are not a Cluster's (emulated RP2040s, say): addr says where a board's
// control server is; key signs the commands (nil: unsigned).
func NewLANController(lan *netsim.LAN, name string, key []byte, addr func(board string) (netip.AddrPort, error)) (*Controller, error) {
	h, err := lan.AddHost(netsim.HostConfig{Name: name})
	if err != nil {
		return nil, err
	}
	return &Controller{clk: lan.Clock(), addr: addr, host: h, Key: key}, nil
}

// ControlTimeout bounds how long, in simulated time, Do waits for a reply:
// long enough for TCP's retransmissions on a lossy link.
const ControlTimeout = 10 * time.Second

// Connect opens a connection to a board's control server. Like ctl.Dial,
// which drives emulated and real boards, it tries up to four times, each
// try bounded by 3 s, with 200 ms, 400 ms and 800 ms between them (the
// defaults of ctl.Options): a connect whose ARP requests or SYNs are all
// lost is tried again, as a careful controller does.
func (ct *Controller) Connect(board string) error {
	to, err := ct.addr(board)
	if err != nil {
		return err
	}
	ct.Close()
	ct.buf, ct.closed, ct.Timeout = nil, false, 0
	ct.conns++
	var opt ctl.Options
	opt.Defaults()
	backoff := opt.Backoff
	for try := 0; ; try++ {
		err = ct.dial(to, opt.Timeout)
		if err == nil || try == opt.Retries {
			break
		}
		ct.clk.Run(ct.clk.Now() + backoff)
		backoff *= 2
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w (after %d tries)", board, err, opt.Retries+1)
	}
	ct.signer = control.Signer{}
	if len(ct.Key) > 0 {
		r, err := ct.Do(`{"action": "get_nonce"}`)
		if err != nil {
			return fmt.Errorf("connect to %s: get_nonce: %w", board, err)
		}
		nonce, _ := r.Fields["nonce"].(string)
		if nonce == "" {
			return fmt.Errorf("connect to %s: get_nonce: %s", board, r.Raw)
		}
		ct.signer = control.Signer{Key: ct.Key, Nonce: nonce}
	}
	return nil
}

// dial makes one connect attempt; one that gives up aborts the connect, as
// a client closing its socket does.
func (ct *Controller) dial(to netip.AddrPort, timeout time.Duration) error {
	var dialErr error
	done, late := false, false
	pending := ct.host.DialTCP(to, func(conn *netsim.TCPConn, err error) {
		if late {
			return
		}
		done, dialErr = true, err
		if err != nil {
			return
		}
		ct.conn = conn
		conn.OnData = ct.receive
		conn.OnClose = func() { ct.closed = true }
	})
	if !ct.clk.RunUntil(ct.clk.Now()+timeout, func() bool { return done }) {
		late = true
		if pending != nil {
			pending.Abort() // no more SYNs: a board that wakes later answers none of them
		}
		return fmt.Errorf("no answer within %v", timeout)
	}
	return dialErr
}

func (ct *Controller) receive(p []byte) {
	ct.buf = append(ct.buf, p...)
	for {
		i := strings.IndexByte(string(ct.buf), '\n')
		if i < 0 {
			return
		}
		line := string(ct.buf[:i])
		ct.buf = ct.buf[i+1:]
		r := Reply{At: ct.clk.Now(), Raw: line}
		if err := json.Unmarshal([]byte(line), &r.Fields); err != nil {
			r.Fields = map[string]any{"error": "reply is not JSON: " + err.Error(), "exception": "picosim"}
		}
		ct.replies = append(ct.replies, r)
	}
}

// Send writes raw bytes on the connection; commands must end with "\n".
func (ct *Controller) Send(raw string) error {
	if ct.conn == nil || ct.closed {
		return fmt.Errorf("not connected")
	}
	ct.conn.Write([]byte(raw))
	return nil
}

// Do sends one command (a JSON object, without the "\n") and returns its
// reply.
func (ct *Controller) Do(cmd string) (Reply, error) {
	n := len(ct.replies)
	line, err := ct.signer.Sign(cmd)
	if err != nil {
		return Reply{}, err
	}
	ct.last = line
	if err := ct.Send(line + "\n"); err != nil {
		return Reply{}, err
	}
	timeout := ct.Timeout
	if timeout <= 0 {
		timeout = ControlTimeout
	}
	if !ct.clk.RunUntil(ct.clk.Now()+timeout, func() bool { return len(ct.replies) > n || ct.closed }) || len(ct.replies) == n {
		if ct.closed {
			return Reply{}, fmt.Errorf("%s: the board closed the connection", cmd)
		}
		return Reply{}, fmt.Errorf("%s: no reply within %v", cmd, timeout)
	}
	return ct.replies[n], nil
}

// LastSent is the last line Do sent, signed if the controller holds a key:
// what a host that overhears the connection has seen.
func (ct *Controller) LastSent() string { return ct.last }

// Replies returns every reply received on the current connection's watch.
func (ct *Controller) Replies() []Reply { return ct.replies }

// Connections counts the connections Connect has made: each closes the
// one before.
func (ct *Controller) Connections() int { return ct.conns }

// Closed reports whether the board closed the connection.
func (ct *Controller) Closed() bool { return ct.closed }

// Close ends the connection, as a controller that goes away does.
func (ct *Controller) Close() {
	if ct.conn != nil && !ct.closed {
		ct.conn.Close()
	}
	ct.conn = nil
}
