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

func (s *EchoServer) Name() string            { return "echo-server" }
func (s *EchoServer) Ports() (uint16, uint16) { return EchoPort, 0 }
func (s *EchoServer) Tick(time.Duration)      {}
func (s *EchoServer) Data(now time.Duration, c ConnID, p []byte) {
	s.stats.Received++
	s.stats.Sent++
	s.op(Op{Kind: Write, Conn: c, Data: append([]byte(nil), p...)})
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

func (c *EchoClient) Name() string            { return "echo-client" }
func (c *EchoClient) Ports() (uint16, uint16) { return 0, 0 }

func (c *EchoClient) Tick(now time.Duration) {
	if now < c.next {
		return
	}
	c.next = now + c.Interval
	if !c.up {
		if !c.dialing {
			c.conn++
			c.dialing = true
			c.op(Op{Kind: Dial, Conn: c.conn, To: c.Server, Port: EchoPort})
		}
		return
	}
	c.seq++
	c.stats.Attempts++
	c.stats.Sent++
	c.op(Op{Kind: Write, Conn: c.conn, Data: []byte("msg " + strconv.Itoa(c.seq) + "\n")})
}

func (c *EchoClient) Connected(now time.Duration, id ConnID, err error) {
	if id != c.conn {
		return
	}
	c.dialing = false
	if err != nil {
		c.stats.Errors++
		return
	}
	c.up, c.buf = true, ""
}

func (c *EchoClient) Data(now time.Duration, id ConnID, p []byte) {
	if id != c.conn {
		return
	}
	c.buf += string(p)
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
}

func (c *EchoClient) Closed(now time.Duration, id ConnID) {
	if id == c.conn {
		c.up, c.dialing = false, false
		c.stats.Errors++
	}
}
