package netsim

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// BenchLink is the impaired link of the benchmark: latency with jitter and a
// little of every kind of trouble, so that every model runs.
var BenchLink = Link{Latency: time.Millisecond, Jitter: 200 * time.Microsecond, Loss: 0.01, Duplicate: 0.01, Reorder: 0.01, Corrupt: 0.001}

// Throughput is what MeasureThroughput found.
type Throughput struct {
	Frames       int
	LANPerSecond float64 // datagrams received per wall second through the LAN
	RawPerSecond float64 // the same through two bare stacks on channel endpoints
	// The same per CPU-second of the process (CPUTime): what the code costs,
	// whatever else the machine is doing.
	LANPerCPUSecond float64
	RawPerCPUSecond float64
	HeapPerHost     uint64 // live heap of an idle host, bytes
	DeliveredLAN    int
	DeliveredRaw    int
}

// Ratio is LAN throughput over the raw pair's, per wall second.
func (t Throughput) Ratio() float64 { return t.LANPerSecond / t.RawPerSecond }

// CPURatio is LAN throughput over the raw pair's, per CPU-second.
func (t Throughput) CPURatio() float64 { return t.LANPerCPUSecond / t.RawPerCPUSecond }

// CPUTime is the CPU time (user and system) the process has used so far.
// Benchmarks take differences of it: unlike wall time, it hardly changes
// when other processes load the machine.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rate is what a measurement of n deliveries found since start (wall) and
// cpu0 (CPUTime): deliveries per wall second and per CPU-second.
func rate(n int, start time.Time, cpu0 time.Duration) (perWall, perCPU float64) {
	return float64(n) / time.Since(start).Seconds(), float64(n) / max(CPUTime()-cpu0, time.Microsecond).Seconds()
}

// MeasureThroughput sends n datagrams of 64 bytes from one host to another,
// through a LAN whose receiving link is link (the fastest of three times)
// and through a raw pair, in the same run, and measures an idle host's heap
// over hosts of them.
func MeasureThroughput(n int, link Link, hosts int) (Throughput, error) {
	res := Throughput{Frames: n}
	var err error
	if res.DeliveredRaw, res.RawPerSecond, res.RawPerCPUSecond, err = rawPair(n); err != nil {
		return res, err
	}
	// The LAN takes a tenth of the raw pair's time, short enough for a GC
	// cycle or a neighbour's burst to move it: the best of three.
	for range 3 {
		runtime.GC() // the last run's garbage is not this one's cost
		got, perWall, perCPU, err := lanPair(n, link)
		if err != nil {
			return res, err
		}
		if perCPU > res.LANPerCPUSecond {
			res.DeliveredLAN, res.LANPerSecond, res.LANPerCPUSecond = got, perWall, perCPU
		}
	}
	res.HeapPerHost, err = HeapPerHost(hosts)
	return res, err
}

// lanPair: broadcast datagrams from a to b through the LAN, in simulated
// time, as fast as the machine goes.
func lanPair(n int, link Link) (got int, perWall, perCPU float64, err error) {
	lan, err := New(Config{Seed: 1})
	if err != nil {
		return 0, 0, 0, err
	}
	defer lan.Close()
	a, _ := lan.AddHost(HostConfig{Name: "a"})
	b, _ := lan.AddHost(HostConfig{Name: "b", Down: link})
	var conn *UDPConn
	armed := false
	conn, err = b.ListenUDP(9, func() {
		if !armed {
			armed = true
			lan.clock.AfterFunc(0, func() {
				armed = false
				for {
					if _, _, ok := conn.ReadFrom(); !ok {
						return
					}
					got++
				}
			})
		}
	})
	if err != nil {
		return 0, 0, 0, err
	}
	send, err := a.ListenUDP(9, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	payload := make([]byte, 64)
	to := netip.AddrPortFrom(lan.Broadcast(), 9)
	start, cpu0 := time.Now(), CPUTime()
	const batch = 256
	for sent := 0; sent < n; sent += batch {
		for i := 0; i < batch && sent+i < n; i++ {
			send.WriteTo(payload, to)
		}
		lan.clock.Run(lan.clock.Now() + 10*time.Millisecond)
	}
	lan.clock.Run(lan.clock.Now() + time.Second)
	perWall, perCPU = rate(got, start, cpu0)
	return got, perWall, perCPU, nil
}

// rawPair: the same datagrams between two stacks joined by channel
// endpoints, pumped by the same goroutine: gVisor's cost alone.
func rawPair(n int) (got int, perWall, perCPU float64, err error) {
	mk := func(mac tcpip.LinkAddress, ip [4]byte) (*stack.Stack, *channel.Endpoint, error) {
		s := stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol, tcp.NewProtocol},
		})
		ch := channel.New(1024, 1514, mac)
		if err := s.CreateNIC(1, ethernet.New(ch)); err != nil {
			return nil, nil, fmt.Errorf("%v", err)
		}
		s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(ip), PrefixLen: 24}}, stack.AddressProperties{})
		sub, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{192, 168, 1, 0}), tcpip.MaskFromBytes([]byte{255, 255, 255, 0}))
		s.SetRouteTable([]tcpip.Route{{Destination: sub, NIC: 1}, {Destination: header.IPv4EmptySubnet, NIC: 1}})
		return s, ch, nil
	}
	sa, cha, err := mk(macFor(1), [4]byte{192, 168, 1, 2})
	if err != nil {
		return 0, 0, 0, err
	}
	sb, chb, err := mk(macFor(2), [4]byte{192, 168, 1, 3})
	if err != nil {
		return 0, 0, 0, err
	}
	defer sa.Destroy()
	defer sb.Destroy()
	var wqa, wqb waiter.Queue
	epa, _ := sa.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wqa)
	epa.SocketOptions().SetBroadcast(true)
	epa.Bind(tcpip.FullAddress{Port: 9})
	epb, _ := sb.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wqb)
	epb.Bind(tcpip.FullAddress{Port: 9})
	to := tcpip.FullAddress{Addr: tcpip.AddrFrom4([4]byte{192, 168, 1, 255}), Port: 9}
	payload := make([]byte, 64)
	var r bytes.Reader
	var sink bytes.Buffer
	start, cpu0 := time.Now(), CPUTime()
	const batch = 256
	for sent := 0; sent < n; sent += batch {
		for i := 0; i < batch && sent+i < n; i++ {
			r.Reset(payload)
			epa.Write(&r, tcpip.WriteOptions{To: &to})
		}
		for {
			pkt := cha.Read()
			if pkt == nil {
				break
			}
			frame := make([]byte, 0, pkt.Size())
			for _, s := range pkt.AsSlices() {
				frame = append(frame, s...)
			}
			pkt.DecRef()
			in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
			chb.InjectInbound(0, in)
			in.DecRef()
		}
		for {
			sink.Reset()
			if _, err := epb.Read(&sink, tcpip.ReadOptions{}); err != nil {
				break
			}
			got++
		}
	}
	perWall, perCPU = rate(got, start, cpu0)
	return got, perWall, perCPU, nil
}

// HeapPerHost returns the live heap of one idle, powered host, measured over
// n of them: the floor under a board's cost (its gVisor stack).
func HeapPerHost(n int) (uint64, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	lan, err := New(Config{Subnet: netip.MustParsePrefix("10.42.0.0/16")})
	if err != nil {
		return 0, err
	}
	for i := range n {
		if _, err := lan.AddHost(HostConfig{Name: fmt.Sprint("h", i)}); err != nil {
			return 0, err
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	per := (ms.HeapAlloc - base) / uint64(n)
	return per, lan.Close()
}
