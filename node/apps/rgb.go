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

func (s *RGBServer) Tick(time.Duration) {}

func (s *RGBServer) Step(now time.Duration, in Input) {
	if in.Kind != Data {
		return
	}
	s.stats.Received++
	v := s.rand.Uint64()
	rgb := strconv.Itoa(int(v&0xff)) + "," + strconv.Itoa(int(v>>8&0xff)) + "," + strconv.Itoa(int(v>>16&0xff))
	s.write(in.Conn, []byte(rgb))
	s.close(in.Conn)
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
	isUp       bool
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

// Last returns the last reading and when it came.
func (c *RGBClient) Last() ([3]int, time.Duration) { return c.lastRGB, c.lastAnswer }

func (c *RGBClient) Step(now time.Duration, in Input) {
	switch in.Kind {
	case Viewed:
		for _, m := range in.View.Members {
			if m.Name == c.ServerName {
				c.resolved = m.IP
			}
		}
	case Connected:
		c.connected(now, in.Conn, in.Err)
	case Data:
		c.data(now, in.Conn, in.Data)
	case Closed:
		if in.Conn == c.conn && c.inPoll {
			c.fail(now, errors.New("connection closed before the reading"))
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
		c.redial(now)
	case c.inPoll && c.Robust && now >= c.pollStart+c.Deadline:
		c.endPoll(now, false)
	case c.inPoll && c.Robust && now >= c.tryStart+c.TryTimeout:
		c.stats.Errors++
		c.close(c.conn)
		c.redial(now)
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

func (c *RGBClient) redial(now time.Duration) {
	to := c.Server
	if c.Robust && !c.resolved.IsZero() {
		to = c.resolved
	}
	if to.IsZero() {
		c.tryStart = now // nobody to ask yet: the try times out
		return
	}
	c.conn++
	c.tryStart, c.isUp = now, false
	c.dial(c.conn, to, RGBPort)
}

func (c *RGBClient) connected(now time.Duration, id ConnID, err error) {
	if id != c.conn || !c.inPoll {
		return
	}
	if err != nil {
		c.fail(now, err)
		return
	}
	c.isUp = true
	c.write(id, []byte("GET Data"))
}

func (c *RGBClient) data(now time.Duration, id ConnID, p []byte) {
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
	c.close(id)
	c.endPoll(now, now-c.pollStart <= c.Deadline)
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
	c.redial(now)
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
