package node

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt")

// TestScripts runs testdata/*.txt: blocks of a command, a line "----" and the
// output it must print. The commands drive nodes through an in-memory LAN
// where every frame takes 1 ms:
//
//	boot NAME IP     power a board on (again: a new incarnation)
//	kill NAME        power a board off, silently
//	leave NAME       shut a board down cleanly, with LEAVE
//	partition A B | C   cut the LAN between groups; heal joins it again
//	offline NAME     its radio loses the network; online NAME: it is back
//	run DURATION     let time pass; prints role, master and leave events
//	roles            prints what each live board sees
//	key HEX | key off   boards booted afterwards use keyed discovery
//	forge IP heartbeat INC SEQ SLOT NAME | forge IP leave INC
//	                 a rogue host broadcasts an unauthenticated frame from IP
//	replay NAME      a rogue host broadcasts again every frame NAME sent
//	stats NAME       prints what NAME dropped
//
// go test ./node -run TestScripts -rewrite updates the expected output.
func TestScripts(t *testing.T) {
	files, _ := os.ReadDir("testdata")
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".txt") {
			continue
		}
		t.Run(f.Name(), func(t *testing.T) {
			path := "testdata/" + f.Name()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			l := &lan{nodes: map[string]*Node{}, group: map[string]int{}, inc: map[string]uint32{}, byIP: map[Addr]string{}, offline: map[string]bool{}}
			for _, block := range strings.Split(string(raw), "\n\n") {
				if strings.TrimSpace(block) == "" {
					continue
				}
				cmd, want, _ := strings.Cut(block, "\n----")
				var comments []string
				for strings.HasPrefix(strings.TrimSpace(cmd), "#") {
					line, rest, _ := strings.Cut(strings.TrimSpace(cmd), "\n")
					comments, cmd = append(comments, line), rest
				}
				got := l.do(t, strings.TrimSpace(cmd))
				if !*rewrite && strings.TrimSpace(want) != strings.TrimSpace(got) {
					t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", path, cmd, got, strings.TrimSpace(want))
				}
				for _, c := range comments {
					fmt.Fprintf(&out, "%s\n", c)
				}
				fmt.Fprintf(&out, "%s\n----\n", strings.TrimSpace(cmd))
				if got != "" {
					fmt.Fprintf(&out, "%s\n", got)
				}
				out.WriteString("\n")
			}
			if *rewrite {
				if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

type packet struct {
	at       time.Duration
	from, to Addr // to is zero for a broadcast
	data     []byte
}

type lan struct {
	now     time.Duration
	nodes   map[string]*Node
	names   []string // boot order, for stable output
	group   map[string]int
	inc     map[string]uint32
	byIP    map[Addr]string // every board ever booted
	offline map[string]bool // radios off the network
	flight  []packet
	printed []string
	key     []byte
	sent    map[Addr][][]byte // every frame each address sent, for replay
}

func (l *lan) name(ip Addr) string {
	if name, ok := l.byIP[ip]; ok {
		return name
	}
	return ip.String()
}

func (l *lan) do(t *testing.T, cmd string) string {
	f := strings.Fields(cmd)
	l.printed = nil
	switch f[0] {
	case "boot":
		var ip Addr
		fmt.Sscanf(f[2], "%d.%d.%d.%d", &ip[0], &ip[1], &ip[2], &ip[3])
		l.inc[f[1]]++
		n, err := New(Config{Name: f[1], IP: ip, Incarnation: l.inc[f[1]], Key: l.key}, l.now)
		if err != nil {
			t.Fatal(err)
		}
		l.nodes[f[1]] = n
		l.byIP[ip] = f[1]
		if !slices.Contains(l.names, f[1]) {
			l.names = append(l.names, f[1])
		}
		l.apply(n)
	case "kill":
		delete(l.nodes, f[1])
	case "leave":
		l.nodes[f[1]].Leave(l.now)
		l.apply(l.nodes[f[1]])
		delete(l.nodes, f[1])
	case "partition":
		l.group = map[string]int{}
		g := 0
		for _, w := range f[1:] {
			if w == "|" {
				g++
				continue
			}
			l.group[w] = g
		}
	case "heal":
		l.group = map[string]int{}
	case "offline":
		l.offline[f[1]] = true
		l.nodes[f[1]].Offline(l.now)
		l.apply(l.nodes[f[1]])
	case "online":
		delete(l.offline, f[1])
		l.nodes[f[1]].Online(l.now)
		l.apply(l.nodes[f[1]])
	case "run":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			t.Fatal(err)
		}
		l.run(l.now + d)
	case "key":
		l.key = nil
		if f[1] != "off" {
			k, err := hex.DecodeString(f[1])
			if err != nil {
				t.Fatal(err)
			}
			l.key = k
		}
	case "forge":
		var ip Addr
		fmt.Sscanf(f[1], "%d.%d.%d.%d", &ip[0], &ip[1], &ip[2], &ip[3])
		num := func(s string) uint32 {
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(v)
		}
		var fr Frame
		switch f[2] {
		case "heartbeat":
			fr = Frame{Type: TypeHeartbeat, Incarnation: num(f[3]), Seq: num(f[4]), Slot: uint16(num(f[5])), Name: []byte(f[6])}
		case "leave":
			fr = Frame{Type: TypeLeave, Incarnation: num(f[3])}
		default:
			t.Fatalf("forge: unknown frame %q", f[2])
		}
		data, err := fr.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		l.flight = append(l.flight, packet{at: l.now + time.Millisecond, from: ip, data: data})
	case "replay":
		var ip Addr
		for a, name := range l.byIP {
			if name == f[1] {
				ip = a
			}
		}
		for _, data := range l.sent[ip] {
			l.flight = append(l.flight, packet{at: l.now + time.Millisecond, from: ip, data: data})
		}
		l.printed = append(l.printed, fmt.Sprintf("replayed %d frames", len(l.sent[ip])))
	case "stats":
		st := l.nodes[f[1]].Stats()
		l.printed = append(l.printed, fmt.Sprintf("%s: malformed %d, unauthenticated %d, stale %d", f[1], st.Malformed, st.Unauthenticated, st.Stale))
	case "roles":
		for _, name := range l.names {
			n := l.nodes[name]
			if n == nil {
				continue
			}
			var view []string
			for _, m := range n.Members() {
				r, _ := n.RoleOf(m.IP)
				view = append(view, fmt.Sprintf("%s#%d=%s", m.Name, m.Incarnation, r))
			}
			l.printed = append(l.printed, fmt.Sprintf("%s: %s", name, strings.Join(view, " ")))
		}
	default:
		t.Fatalf("unknown command %q", cmd)
	}
	return strings.Join(l.printed, "\n")
}

func (l *lan) apply(n *Node) {
	rd := n.Ready()
	for _, d := range rd.Datagrams {
		if l.offline[n.cfg.Name] {
			break // its radio is off the network: nothing leaves
		}
		to := d.To
		if to == n.cfg.Broadcast {
			to = Addr{}
		}
		data := append([]byte(nil), d.Payload...)
		l.flight = append(l.flight, packet{at: l.now + time.Millisecond, from: n.cfg.IP, to: to, data: data})
		if l.sent == nil {
			l.sent = map[Addr][][]byte{}
		}
		l.sent[n.cfg.IP] = append(l.sent[n.cfg.IP], data)
	}
	for _, e := range rd.Events {
		var s string
		switch e.Kind {
		case RoleChanged:
			s = fmt.Sprintf("is %s", e.Role)
		case MasterChanged:
			s = fmt.Sprintf("follows %s", l.name(e.Member.IP))
		case MemberLeft:
			s = fmt.Sprintf("drops %s (%s)", l.name(e.Member.IP), e.Reason)
		default:
			continue
		}
		l.printed = append(l.printed, fmt.Sprintf("%.3fs %s %s", e.At.Seconds(), n.cfg.Name, s))
	}
	n.Advance()
}

// run delivers frames and ticks nodes in time order until end.
func (l *lan) run(end time.Duration) {
	for {
		next := end + 1
		for _, p := range l.flight {
			next = min(next, p.at)
		}
		for _, name := range l.names {
			if n := l.nodes[name]; n != nil {
				next = min(next, n.deadline())
			}
		}
		if next > end {
			l.now = end
			return
		}
		l.now = next
		var later []packet
		due := []packet{}
		for _, p := range l.flight {
			if p.at <= l.now {
				due = append(due, p)
			} else {
				later = append(later, p)
			}
		}
		l.flight = later
		for _, p := range due {
			from := l.name(p.from)
			for _, name := range l.names {
				n := l.nodes[name]
				if n == nil || name == from || l.group[name] != l.group[from] || l.offline[name] || (!p.to.IsZero() && p.to != n.cfg.IP) {
					continue
				}
				n.Step(l.now, p.from, Port, p.data)
				l.apply(n)
			}
		}
		for _, name := range l.names {
			if n := l.nodes[name]; n != nil && n.deadline() <= l.now {
				n.Tick(l.now)
				l.apply(n)
			}
		}
	}
}
