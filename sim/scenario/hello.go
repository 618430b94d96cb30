package scenario

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/picosim/picosim/netsim"
)

// hello plays the desktop client of shared/seeds/003: broadcast HELLO on
// UDP 37020 and wait for FULL from the registry. It is written from the
// wire format alone, as a user's script would be.
func (r *runner) hello(h *Hello) error {
	c := r.c
	host := c.LAN().Host("desktop")
	if host == nil {
		var err error
		if host, err = c.LAN().AddHost(netsim.HostConfig{Name: "desktop"}); err != nil {
			return err
		}
	}
	members := -1
	from := ""
	var conn *netsim.UDPConn
	conn, err := host.ListenUDP(37020, func() {
		c.Clock().AfterFunc(0, func() {
			for {
				p, src, ok := conn.ReadFrom()
				if !ok {
					return
				}
				if len(p) >= 2 && p[0] == 2 && members < 0 { // FULL: [2, count, ...]
					members, from = int(p[1]), src.Addr().String()
				}
			}
		})
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	name := "DesktopClient"
	if err := conn.WriteTo(append([]byte{1, byte(len(name))}, name...), netip.MustParseAddrPort("255.255.255.255:37020")); err != nil {
		return err
	}
	within := h.Within.D()
	if within == 0 {
		within = 2 * time.Second
	}
	c.RunUntil(c.Now()+within, func() bool { return members >= 0 })
	want := h.Members
	if want == 0 {
		for _, b := range c.Boards() {
			if b.Up() {
				want++
			}
		}
	}
	switch {
	case members < 0:
		return fmt.Errorf("hello: no FULL from the registry within %v", within)
	case members != want:
		return fmt.Errorf("hello: FULL from %s lists %d members, want %d", from, members, want)
	}
	return nil
}
