package targets

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/picosim/picosim/node/control"
)

// Lab keeps emulated boards running for a harness that treats them as a lab
// of real boards: Inventory describes them (addresses inside the LAN, a
// namespace to reach them from, power commands), and the power commands
// come back to the lab through a Unix socket. It is how the hw target is
// tested without a board.
type Lab struct {
	*Emulated
	Socket string
	ln     net.Listener
	done   chan struct{}
}

// NewLab starts the spec's boards and listens for power commands on socket.
func NewLab(spec Spec, cfg EmulatedConfig, socket string) (*Lab, error) {
	e, err := NewEmulated(spec, cfg)
	if err != nil {
		return nil, err
	}
	os.Remove(socket) // a lab killed before it could clean up
	ln, err := net.Listen("unix", socket)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("lab: power socket: %w", err)
	}
	l := &Lab{Emulated: e, Socket: socket, ln: ln, done: make(chan struct{})}
	go l.serve()
	return l, nil
}

// Inventory lists the lab's boards. power is the command that reaches the
// lab's socket, such as "picosim lab power --socket /run/lab.sock"; "on
// NAME" and "off NAME" are added to it.
func (l *Lab) Inventory(power string) *Inventory {
	inv := &Inventory{Netns: l.Netns("laptop"), Broadcast: l.lan.Broadcast().String()}
	for _, name := range l.Boards() {
		inv.Boards = append(inv.Boards, InventoryBoard{
			Name: name, Address: l.doors[name].Host().IP().String(), ControlPort: control.Port,
			PowerOff: power + " off " + name, PowerOn: power + " on " + name,
		})
	}
	return inv
}

// PowerCommand is how this program reaches a lab's socket: its own "lab
// power" command (Reexec runs it in test binaries).
func PowerCommand(socket string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("'%s' lab power --socket '%s'", exe, socket), nil
}

// Close stops serving power commands and closes the boards.
func (l *Lab) Close() error {
	l.ln.Close()
	<-l.done
	os.Remove(l.Socket)
	return l.Emulated.Close()
}

// serve answers "on NAME" and "off NAME", a line each, with "ok" or
// "error: why".
func (l *Lab) serve() {
	defer close(l.done)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			var what, board string
			fmt.Sscan(line, &what, &board)
			switch {
			case what == "off":
				err = l.PowerOff(board)
			case what == "on":
				err = l.PowerOn(board)
			default:
				err = fmt.Errorf("%q: want on or off, and a board", strings.TrimSpace(line))
			}
			if err != nil {
				fmt.Fprintf(c, "error: %v\n", err)
				return
			}
			fmt.Fprintln(c, "ok")
		}()
	}
}
