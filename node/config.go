package node

import (
	"errors"
	"time"

	"github.com/picosim/picosim/node/mac"
)

// Source is the randomness a node draws from (heartbeat jitter). Pass a seeded
// generator to make runs replayable; *math/rand/v2.PCG satisfies it.
type Source interface{ Uint64() uint64 }

// Config describes one board. Every board of a cluster must use the same
// Heartbeat, Jitter and MissLimit, since each judges the others by its own.
type Config struct {
	Name        string // at most MaxName bytes
	IP          Addr
	Incarnation uint32 // must grow with every boot of this board
	// Seq is the heartbeat count to go on from: a board that starts
	// discovery again at a new address within one boot keeps counting, so
	// that its heartbeats stay newer than any the others heard from it.
	Seq uint32
	// Broadcast is where heartbeats go: the subnet broadcast address on real
	// boards (their stack sends 255.255.255.255 to the gateway's MAC).
	// Default 255.255.255.255.
	Broadcast Addr
	// Heartbeat is the mean interval between heartbeats. Default 1s.
	Heartbeat time.Duration
	// Jitter spreads each interval uniformly over Heartbeat±Jitter so that
	// boards booted together do not transmit together. Default Heartbeat/10.
	Jitter time.Duration
	// MissLimit is k: a member is gone after k intervals of Heartbeat+Jitter
	// without evidence of life. Default 3.
	MissLimit int
	// Settle is how long a board listens after boot before it takes a role.
	// Default 2×Heartbeat.
	Settle time.Duration
	// Witnesses is how many "I heard X" reports ride on each heartbeat.
	// Default 16; 0 keeps the default, a negative value turns them off.
	Witnesses int
	// MaxDatagram bounds FULL frames; longer member lists are split. Default
	// 1472, the UDP payload of one 1500-byte Ethernet frame.
	MaxDatagram int
	// Rand drives the jitter. Default: a generator seeded from IP and
	// Incarnation, so that a run never depends on hidden global state.
	Rand Source
	// Key, if set (16 to 32 bytes), turns on keyed discovery (auth.go):
	// every frame carries a tag under it, and frames without a valid one are
	// dropped. Every board of a cluster, and every desktop client, must hold
	// the same key. Nil: the seed-003 wire format, unauthenticated.
	Key []byte
	// Intern, if set, turns a received name into a string. A simulator with
	// thousands of boards shares one table; boards leave it nil.
	Intern func([]byte) string
}

// WithDefaults returns c with every zero setting filled in, or the first
// invalid one. It suits a template for many boards: a zero IP passes, and
// Rand and Intern stay as they were, since New gives each board its own.
func (c Config) WithDefaults() (Config, error) {
	ip, rnd, intern := c.IP, c.Rand, c.Intern
	if ip.IsZero() {
		c.IP = Addr{0, 0, 0, 1}
	}
	err := c.setDefaults()
	c.IP, c.Rand, c.Intern = ip, rnd, intern
	return c, err
}

func (c *Config) setDefaults() error {
	if len(c.Name) > MaxName {
		return ErrNameTooLong
	}
	if c.IP.IsZero() {
		return errors.New("node: config has no IP address")
	}
	if c.Broadcast.IsZero() {
		c.Broadcast = Addr{255, 255, 255, 255}
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.Jitter <= 0 {
		c.Jitter = c.Heartbeat / 10
	}
	if c.Jitter >= c.Heartbeat {
		return errors.New("node: jitter must be smaller than the heartbeat")
	}
	if c.MissLimit <= 0 {
		c.MissLimit = 3
	}
	if c.Settle <= 0 {
		c.Settle = 2 * c.Heartbeat
	}
	if c.Witnesses == 0 {
		c.Witnesses = 16
	}
	if c.Witnesses > 255 {
		c.Witnesses = 255
	}
	if c.MaxDatagram <= 0 {
		c.MaxDatagram = 1472
	}
	if len(c.Key) > 0 && (len(c.Key) < mac.MinKey || len(c.Key) > mac.MaxKey) {
		return errors.New("node: key must be 16 to 32 bytes")
	}
	if c.MaxDatagram < 2+FullEntrySize(make([]byte, MaxName))+c.trailer() {
		return errors.New("node: MaxDatagram too small for one FULL entry")
	}
	if c.Rand == nil {
		c.Rand = &splitmix{uint64(c.IP.Uint32())<<32 | uint64(c.Incarnation)}
	}
	if c.Intern == nil {
		c.Intern = func(b []byte) string { return string(b) }
	}
	return nil
}

// trailer is what keyed discovery adds to every frame.
func (c *Config) trailer() int {
	if len(c.Key) > 0 {
		return mac.Size
	}
	return 0
}

// Timeout is how long a member may stay silent before it is gone.
func (c *Config) Timeout() time.Duration {
	return time.Duration(c.MissLimit) * (c.Heartbeat + c.Jitter)
}

// splitmix is SplitMix64: tiny, fast, and enough for jitter.
type splitmix struct{ s uint64 }

func (r *splitmix) Uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
