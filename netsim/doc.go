// Package netsim provides a simulated LAN of gVisor TCP/IP stacks: hosts with
// a MAC and an IPv4 address that speak ARP, UDP (broadcast included) and TCP
// to each other through impaired links, all in simulated time.
//
// One path carries every frame: a host's stack writes an Ethernet frame to
// its port; the LAN decides, from one seeded random source, whether the frame
// survives the sender's uplink and each receiver's downlink, and how long each
// takes; at the arrival time it injects the frame into the receiver's stack.
// Partitions and powered-off hosts are checked on the same path, and every
// decision is counted per host.
//
// Time comes from one clock.Virtual, handed to every stack as its tcpip.Clock.
// When the clock runs on one goroutine (clock.Virtual.Run), UDP traffic is
// replayable frame for frame under a seed; TCP needs clock.Virtual.Serve,
// because gVisor processes segments on goroutines of its own.
//
// netsim knows frames, links and addresses; it knows nothing of discovery or
// roles.
package netsim
