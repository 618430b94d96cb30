package sim_test

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/sim"
)

// desktop is the Python client of shared/seeds/003 written again in Go from
// the wire format alone: it shares no code with node/, so a change of the
// format that breaks real clients breaks this test too.
type desktop struct {
	c        *sim.Cluster
	d        *sim.Desktop
	fullFrom string
	rng      *rand.Rand
}

func newDesktop(c *sim.Cluster) *desktop {
	d, err := c.NewDesktop("desktop")
	Expect(err).NotTo(HaveOccurred())
	return &desktop{c: c, d: d, rng: rand.New(rand.NewPCG(1, 2))}
}

func (d *desktop) broadcast(p []byte) {
	Expect(d.d.Send(p, netip.MustParseAddrPort("255.255.255.255:37020"))).To(Succeed())
}

// hello sends [1, name_len, name] as send_hello does.
func (d *desktop) hello(name string) {
	d.broadcast(append([]byte{1, byte(len(name))}, name...))
}

// full returns the first FULL received (like decode_full: only FULL counts).
func (d *desktop) full() []byte {
	for _, r := range d.d.Received() {
		if len(r.Payload) >= 2 && r.Payload[0] == 2 {
			d.fullFrom = r.From.Addr().String()
			return r.Payload
		}
	}
	return nil
}

// awaitFull runs the cluster until a FULL arrives and decodes it as
// decode_full does.
func (d *desktop) awaitFull(within time.Duration) map[string]string {
	d.d.Forget()
	d.c.RunUntil(d.c.Now()+within, func() bool { return d.full() != nil })
	data := d.full()
	Expect(data).NotTo(BeNil(), "no FULL within %v", within)
	peers := map[string]string{}
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
