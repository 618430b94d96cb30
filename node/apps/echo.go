package apps

import (
	"strconv"
	"strings"
	"time"

	"github.com/picosim/picosim/node"
)

// EchoPort is the TCP port of the echo server.
const EchoPort = 7

// EchoServer sends back whatever it receives (shared/seeds/004).
type EchoServer struct{ base }

// NewEchoServer returns an echo server.
func NewEchoServer() *EchoServer {
	s := &EchoServer{}
	s.next = Never
	return s
}

func (s *EchoServer) Tick(time.Duration) {}

func (s *EchoServer) Step(now time.Duration, in Input) {
	if in.Kind == Data {
		s.stats.Received++
		s.stats.Sent++
		s.write(in.Conn, append([]byte(nil), in.Data...))
	}
}

// EchoClient keeps one connection to an echo server and sends "msg N\n"
// every Interval; an attempt is a message, a success its echo. A broken
// connection is dialled again at the next message.
type EchoClient struct {
	base
	Server   node.Addr
	Interval time.Duration
	conn     ConnID
	up       bool
	dialing  bool
	seq      int
	buf      string
}

// NewEchoClient starts a client of server at now.
func NewEchoClient(server node.Addr, interval, now time.Duration) *EchoClient {
	if interval <= 0 {
		interval = time.Second
	}
	c := &EchoClient{Server: server, Interval: interval}
	c.next = now
	return c
}

func (c *EchoClient) Tick(now time.Duration) {
	if now < c.next {
		return
	}
	c.next = now + c.Interval
	if !c.up {
		if !c.dialing {
			c.conn++
			c.dialing = true
			c.dial(c.conn, c.Server, EchoPort)
		}
		return
	}
	c.seq++
	c.stats.Attempts++
	c.stats.Sent++
	c.write(c.conn, []byte("msg "+strconv.Itoa(c.seq)+"\n"))
}

func (c *EchoClient) Step(now time.Duration, in Input) {
	if in.Conn != c.conn {
		return
	}
	switch in.Kind {
	case Connected:
		c.dialing = false
		if in.Err != nil {
			c.stats.Errors++
			return
		}
		c.up, c.buf = true, ""
	case Data:
		c.buf += string(in.Data)
		for {
			i := strings.IndexByte(c.buf, '\n')
			if i < 0 {
				return
			}
			line := c.buf[:i]
			c.buf = c.buf[i+1:]
			if strings.HasPrefix(line, "msg ") {
				c.stats.Received++
				c.stats.Successes++
			}
		}
	case Closed:
		c.up, c.dialing = false, false
		c.stats.Errors++
	}
}
