package node_test

import (
	"fmt"
	"time"

	"github.com/picosim/picosim/node"
)

// Two boards on an ideal wire: the driver loop of the package documentation,
// with a slice standing in for the network.
func Example() {
	type packet struct {
		from node.Addr
		data []byte
	}
	boards := map[node.Addr]*node.Node{}
	var wire []packet
	now := time.Duration(0)
	deadlines := map[node.Addr]time.Duration{}

	// Step 4 and 5 of the loop: carry out Ready, then Advance.
	apply := func(n *node.Node) {
		rd := n.Ready()
		for _, d := range rd.Datagrams {
			wire = append(wire, packet{n.Config().IP, append([]byte(nil), d.Payload...)})
		}
		for _, e := range rd.Events {
			if e.Kind == node.RoleChanged {
				fmt.Printf("%s is %s\n", n.Config().Name, e.Role)
			}
		}
		deadlines[n.Config().IP] = rd.Deadline
		n.Advance()
	}
	for i, name := range []string{"pico1", "pico2"} {
		ip := node.Addr{192, 168, 1, byte(2 + i)}
		n, _ := node.New(node.Config{Name: name, IP: ip, Incarnation: 1}, now) // step 1
		boards[ip] = n
		apply(n)
	}
	for now < 3*time.Second {
		now += 10 * time.Millisecond
		for _, p := range wire { // step 2: every board hears every broadcast
			for ip, n := range boards {
				if ip != p.from {
					n.Step(now, p.from, node.Port, p.data)
					apply(n)
				}
			}
		}
		wire = wire[:0]
		for _, ip := range []node.Addr{{192, 168, 1, 2}, {192, 168, 1, 3}} { // step 3
			if now >= deadlines[ip] {
				boards[ip].Tick(now)
				apply(boards[ip])
			}
		}
	}
	// Output:
	// pico1 is MASTER
	// pico2 is WORKER1
}
