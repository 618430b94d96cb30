package firmware_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// The RAM a Pico W gives the program. The RP2040 has 264 KiB; TinyGo's heap
// is what static data (about 11 KB for this image) and the stacks leave, and
// the adapter keeps about 20 KB of its own (radio frames, the discovery
// inbox, two TCP connections' buffers). HeapBudget is what the program may
// need at most with a cluster of 64 boards: half the heap the adapter
// reports, leaving the rest to the adapter, the radio driver and the
// garbage collector's slack (TinyGo's collector is conservative and does
// not compact).
const (
	picoRAM     = 264 << 10
	picoHeap    = 200 << 10
	HeapBudget  = picoHeap / 2
	budgetNodes = 64
)

// quietBoard is a firmware.Board that keeps nothing but the replies of its
// control connections, so that the heap measured is the program's.
type quietBoard struct {
	net     *quietLAN
	ip      node.Addr
	p       *firmware.Program
	replies map[control.ConnID]*bytes.Buffer
}

func (b *quietBoard) Listen(firmware.Port) error                   { return nil }
func (b *quietBoard) Unlisten(firmware.Port) error                 { return nil }
func (b *quietBoard) Dial(control.ConnID, node.Addr, uint16) error { return nil }
func (b *quietBoard) SendUDP(from uint16, to node.Addr, port uint16, payload []byte) error {
	b.net.queue = append(b.net.queue, dgram{b.ip, to, append([]byte(nil), payload...)})
	return nil
}
func (b *quietBoard) Write(c control.ConnID, data []byte) error {
	if r := b.replies[c]; r != nil {
		r.Write(data)
	}
	return nil
}
func (b *quietBoard) Close(control.ConnID) error    { return nil }
func (b *quietBoard) Peer(control.ConnID) node.Addr { return node.Addr{} }
func (b *quietBoard) SetPin(int, int)               {}
func (b *quietBoard) ReadPin(int) int               { return 0 }
func (b *quietBoard) Console([]byte)                {}
func (b *quietBoard) Rejoin() error                 { return nil }

type quietLAN struct {
	now    time.Duration
	boards []*quietBoard
	queue  []dgram
}

func (l *quietLAN) run(d time.Duration) {
	end := l.now + d
	for l.now < end {
		for len(l.queue) > 0 {
			q := l.queue[0]
			l.queue = l.queue[1:]
			for _, b := range l.boards {
				if b.ip != q.from && (q.to == bcast || q.to == b.ip) {
					b.p.Datagram(l.now, node.Port, q.from, node.Port, q.payload)
				}
			}
		}
		next := end
		for _, b := range l.boards {
			next = min(next, b.p.Deadline())
		}
		l.now = max(l.now, next)
		for _, b := range l.boards {
			if b.p.Deadline() <= l.now {
				b.p.Tick(l.now)
			}
		}
	}
	l.queue = nil
}

// heapAlloc is the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// allocated is what f allocates, live or not: a transient need.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestHeapBudget measures the heap one board's program needs in a cluster
// of 64 (its member table, every GPIO set up and held, two controllers
// each with a command half received, the console line) plus the largest
// allocation one command makes (get_state, which lists all 64 members),
// and fails when that exceeds HeapBudget. The figures are from the host
// build, whose pointers are 8 bytes against the RP2040's 4: an upper bound.
// hack/tinygo-build.sh prints the "heap budget:" line.
func TestHeapBudget(t *testing.T) {
	base := heapAlloc()
	l := &quietLAN{}
	for i := range budgetNodes {
		b := &quietBoard{net: l, ip: node.Addr{10, 0, 0, byte(2 + i)}, replies: map[control.ConnID]*bytes.Buffer{}}
		flash := firmware.MemFlash{firmware.FileSettings: firmware.Settings{Name: fmt.Sprintf("board-with-a-long-name-%02d", i)}.JSON()}
		p, _, err := firmware.Start(b, flash, firmware.Options{}, l.now)
		if err != nil {
			t.Fatal(err)
		}
		b.p = p
		if err := p.Joined(l.now, b.ip, bcast); err != nil {
			t.Fatal(err)
		}
		l.boards = append(l.boards, b)
	}
	l.run(20 * time.Second)
	for _, b := range l.boards {
		for c := control.ConnID(1); c <= 2; c++ {
			b.p.Opened(l.now, c, control.Port)
		}
		var cmds strings.Builder
		for pin := 0; pin <= control.MaxPin; pin++ {
			fmt.Fprintf(&cmds, `{"action": "setup_pin", "pin": %d, "mode": "output", "value": 0}`+"\n", pin)
			fmt.Fprintf(&cmds, `{"action": "write_pin", "pin": %d, "value": 1, "timeout": 600}`+"\n", pin)
		}
		b.p.Received(l.now, 1, []byte(cmds.String()))
		for c := control.ConnID(1); c <= 2; c++ { // a command that has not ended yet, as long as they come
			b.p.Received(l.now, c, []byte(`{"action": "ping", "pad": "`+strings.Repeat("x", control.MaxCommand-40)))
		}
	}
	l.run(5 * time.Second)
	live := heapAlloc() - base
	perBoard := live / budgetNodes

	probe := l.boards[budgetNodes-1]
	probe.replies[3] = bytes.NewBuffer(make([]byte, 0, 64<<10)) // the test's own buffer, not measured
	probe.p.Opened(l.now, 3, control.Port)
	transient := allocated(func() { probe.p.Received(l.now, 3, []byte(`{"action": "get_state"}`+"\n")) })
	var reply struct {
		State firmware.State `json:"state"`
	}
	if err := json.Unmarshal(probe.replies[3].Bytes(), &reply); err != nil || len(reply.State.Members) != budgetNodes || len(reply.State.Pins) != control.MaxPin+1 {
		t.Fatalf("the cluster did not converge as measured: %v, %d members, %d pins", err, len(reply.State.Members), len(reply.State.Pins))
	}
	need := perBoard + transient
	// hack/tinygo-build.sh reads this line: used, budget, then the detail.
	t.Logf("heap budget: %d %d %d live per board in a cluster of %d + %d for get_state, of a %d KiB heap",
		need, HeapBudget, perBoard, budgetNodes, transient, picoHeap>>10)
	if need > HeapBudget {
		t.Fatalf("the program needs %d bytes of heap with %d boards, over its budget of %d", need, budgetNodes, HeapBudget)
	}
}
