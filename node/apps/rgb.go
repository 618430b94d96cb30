package apps

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/picosim/picosim/node"
)

// RGBPort is the TCP port of the RGB telemetry server.
const RGBPort = 80

// RGBServer is the server of shared/seeds/001: it answers whatever a client
// sends with three random values "r,g,b" and closes the connection.
type RGBServer struct {
	base
	rand node.Source
}

// NewRGBServer returns a server drawing its colours from rand.
func NewRGBServer(rand node.Source) *RGBServer {
	s := &RGBServer{rand: rand}
	s.next = Never
	return s
}

func (s *RGBServer) Name() string            { return "rgb-server" }
func (s *RGBServer) Ports() (uint16, uint16) { return RGBPort, 0 }
func (s *RGBServer) Tick(time.Duration)      {}

func (s *RGBServer) Data(now time.Duration, c ConnID, p []byte) {
	s.stats.Received++
	v := s.rand.Uint64()
	rgb := strconv.Itoa(int(v&0xff)) + "," + strconv.Itoa(int(v>>8&0xff)) + "," + strconv.Itoa(int(v>>16&0xff))
	s.op(Op{Kind: Write, Conn: c, Data: []byte(rgb)})
	s.op(Op{Kind: Close, Conn: c})
	s.stats.Sent++
}

// RGBClient polls an RGBServer: connect, send "GET Data", read "r,g,b".
//
// Both variants count the same way: a poll is an attempt, and it succeeds
// when a reading arrives within Deadline of the poll's start. After a poll
// ends, the next starts Interval later.
//
// The naive client is the seed's script: it dials a fixed address, waits as
// long as TCP takes, and stops for good at the first error (the script has no
// try/except). The robust client finds the server by name through discovery
// at every poll (the server's address may change), gives each try TryTimeout,
// and tries again at once until the deadline.
type RGBClient struct {
	base
	Robust     bool
	Server     node.Addr // naive: the fixed address
	ServerName string    // robust: the board to find through discovery
	Interval   time.Duration
	Deadline   time.Duration
	TryTimeout time.Duration

	resolved   node.Addr // robust: the server's address as discovery last said
	conn       ConnID
	inPoll     bool
	pollStart  time.Duration
	tryStart   time.Duration
	connected  bool
	nextPoll   time.Duration
	lastRGB    [3]int
	lastAnswer time.Duration
}

// NewRGBClient starts a client at now; fill in Server (naive) or ServerName
// (robust).
func NewRGBClient(robust bool, now time.Duration) *RGBClient {
	c := &RGBClient{Robust: robust, Interval: 200 * time.Millisecond, Deadline: 3 * time.Second, TryTimeout: 300 * time.Millisecond}
	c.nextPoll = now
	c.next = now
	return c
}

func (c *RGBClient) Name() string {
	if c.Robust {
		return "rgb-client-robust"
	}
	return "rgb-client-naive"
}
func (c *RGBClient) Ports() (uint16, uint16) { return 0, 0 }

// Last returns the last reading and when it came.
func (c *RGBClient) Last() ([3]int, time.Duration) { return c.lastRGB, c.lastAnswer }

func (c *RGBClient) View(now time.Duration, self, master node.Addr, members []node.Member) {
	for _, m := range members {
		if m.Name == c.ServerName {
			c.resolved = m.IP
		}
	}
}

func (c *RGBClient) Tick(now time.Duration) {
	if c.stats.Crashed {
		c.next = Never
		return
	}
	switch {
	case !c.inPoll && now >= c.nextPoll:
		c.inPoll, c.pollStart = true, now
		c.stats.Attempts++
		c.dial(now)
	case c.inPoll && c.Robust && now >= c.pollStart+c.Deadline:
		c.endPoll(now, false)
	case c.inPoll && c.Robust && now >= c.tryStart+c.TryTimeout:
		c.stats.Errors++
		c.op(Op{Kind: Close, Conn: c.conn})
		c.dial(now)
	}
	c.schedule()
}

func (c *RGBClient) schedule() {
	switch {
	case c.stats.Crashed:
		c.next = Never
	case !c.inPoll:
		c.next = c.nextPoll
	case c.Robust:
		c.next = min(c.pollStart+c.Deadline, c.tryStart+c.TryTimeout)
	default:
		c.next = Never // the naive client just waits
	}
}

func (c *RGBClient) dial(now time.Duration) {
	to := c.Server
	if c.Robust && !c.resolved.IsZero() {
		to = c.resolved
	}
	if to.IsZero() {
		c.tryStart = now // nobody to ask yet: the try times out
		return
	}
	c.conn++
	c.tryStart, c.connected = now, false
	c.op(Op{Kind: Dial, Conn: c.conn, To: to, Port: RGBPort})
}

func (c *RGBClient) Connected(now time.Duration, id ConnID, err error) {
	if id != c.conn || !c.inPoll {
		return
	}
	if err != nil {
		c.fail(now, err)
		return
	}
	c.connected = true
	c.op(Op{Kind: Write, Conn: id, Data: []byte("GET Data")})
}

func (c *RGBClient) Data(now time.Duration, id ConnID, p []byte) {
	if id != c.conn || !c.inPoll {
		return
	}
	rgb, err := parseRGB(string(p))
	if err != nil {
		c.fail(now, err)
		return
	}
	c.lastRGB, c.lastAnswer = rgb, now
	c.stats.Received++
	c.op(Op{Kind: Close, Conn: id})
	c.endPoll(now, now-c.pollStart <= c.Deadline)
}

func (c *RGBClient) Closed(now time.Duration, id ConnID) {
	if id == c.conn && c.inPoll {
		c.fail(now, errors.New("connection closed before the reading"))
	}
}

// fail handles a failed try: the naive script dies; the robust client tries
// again at once (its deadline still stands).
func (c *RGBClient) fail(now time.Duration, err error) {
	c.stats.Errors++
	if !c.Robust {
		c.stats.Crashed = true
		c.inPoll = false
		c.schedule()
		return
	}
	c.dial(now)
	c.schedule()
}

func (c *RGBClient) endPoll(now time.Duration, ok bool) {
	if ok {
		c.stats.Successes++
	}
	c.inPoll = false
	c.nextPoll = now + c.Interval
	c.schedule()
}

func parseRGB(s string) ([3]int, error) {
	var out [3]int
	parts := strings.Split(strings.TrimSpace(s), ",")
	if len(parts) != 3 {
		return out, errors.New("reading is not r,g,b: " + strconv.Quote(s))
	}
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 255 {
			return out, errors.New("reading is not r,g,b: " + strconv.Quote(s))
		}
		out[i] = v
	}
	return out, nil
}
