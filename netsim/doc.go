// Package netsim provides a simulated LAN of gVisor TCP/IP stacks: hosts with
// a MAC and an IPv4 address that speak ARP, UDP (broadcast included) and TCP
// to each other through impaired links, in simulated time.
//
// One path carries every frame (lan.go: transmit, forward): a host's stack
// writes an Ethernet frame to its port; the LAN decides, from one seeded
// random source, what the sender's uplink and each receiver's downlink (or
// the pair's link, SetPair) do to it (loss, Gilbert–Elliott bursts, latency
// with uniform or normal jitter and an exponential tail, duplication,
// reordering, corruption, a rate limit with a tail-drop queue, MTU), checks
// partitions and one-way cuts, power and radio association, and at the
// arrival time injects the frame into the receiver's stack. Every decision is
// counted per host, and written to a pcapng capture when one runs (comments
// say who missed a frame and why).
//
// Hosts may carry the radio of a Pico W (PicoW: join delay, power-save
// latency, association loss), get their addresses from a router with DHCP
// semantics (Addressing), or live on a board's soft AP (Config.SoftAP). A
// door (OpenDoor) attaches a TAP device in a network namespace as one more
// host, so that ordinary programs on the machine exchange frames with the
// simulated boards.
//
// Time comes from one clock.Virtual, handed to every stack as its
// tcpip.Clock. Run on one goroutine (clock.Virtual.Run), a LAN is replayable
// frame for frame under a seed, TCP included: after every event the LAN
// waits for gVisor's TCP processors to drain (settle). With programs outside
// (a door, forwarded ports) the clock runs paced to the wall clock
// (clock.Virtual.RunPaced).
//
// netsim knows frames, links and addresses; it knows nothing of discovery or
// roles.
package netsim
