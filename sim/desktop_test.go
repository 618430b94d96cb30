package sim_test

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
)

// desktop is the Python client of shared/seeds/003 written again in Go from
// the wire format alone: it shares no code with node/, so a change of the
// format that breaks real clients breaks this test too.
type desktop struct {
	c        *sim.Cluster
	conn     *netsim.UDPConn
	fulls    [][]byte
	fullFrom string
	rng      *rand.Rand
}

func newDesktop(c *sim.Cluster) *desktop {
	d := &desktop{c: c, rng: rand.New(rand.NewPCG(1, 2))}
	h, err := c.LAN().AddHost(netsim.HostConfig{Name: "desktop"})
	Expect(err).NotTo(HaveOccurred())
	d.conn, err = h.ListenUDP(37020, func() {
		c.Clock().AfterFunc(0, func() {
			for {
				p, from, ok := d.conn.ReadFrom()
				if !ok {
					return
				}
				if len(p) >= 2 && p[0] == 2 { // like decode_full: only FULL counts
					d.fulls = append(d.fulls, append([]byte(nil), p...))
					d.fullFrom = from.Addr().String()
				}
			}
		})
	})
	Expect(err).NotTo(HaveOccurred())
	return d
}

func (d *desktop) broadcast(p []byte) {
	Expect(d.conn.WriteTo(p, netip.MustParseAddrPort("255.255.255.255:37020"))).To(Succeed())
}

// hello sends [1, name_len, name] as send_hello does.
func (d *desktop) hello(name string) {
	d.broadcast(append([]byte{1, byte(len(name))}, name...))
}

// awaitFull runs the cluster until a FULL arrives and decodes it as
// decode_full does.
func (d *desktop) awaitFull(within time.Duration) map[string]string {
	d.fulls = nil
	d.c.RunUntil(d.c.Now()+within, func() bool { return len(d.fulls) > 0 })
	Expect(d.fulls).NotTo(BeEmpty(), "no FULL within %v", within)
	peers := map[string]string{}
	data := d.fulls[0]
	count, offset := int(data[1]), 2
	for range count {
		if len(data) < offset+5 {
			break
		}
		ip := net.IP(data[offset : offset+4]).String()
		offset += 4
		n := int(data[offset])
		offset++
		peers[ip] = string(data[offset : offset+n])
		offset += n
	}
	return peers
}

func (d *desktop) random(i int) []byte {
	p := make([]byte, 1+d.rng.IntN(40))
	for j := range p {
		p[j] = byte(d.rng.Uint32())
	}
	p[0] = byte(1 + i%3) // HELLO, FULL or heartbeat type, with garbage after it
	if i%2 == 0 {
		p = p[:1] // just a type byte
	}
	return p
}
