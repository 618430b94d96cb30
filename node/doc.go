// Package node provides the portable core that every Pico W board runs:
// discovery, membership and the MASTER/WORKER election, as a sans-I/O state
// machine.
//
// The core does no I/O, starts no goroutines and never reads a clock. Its
// inputs are "this datagram arrived" (Step) and "it is now T" (Tick); its
// outputs come back as data (Ready): datagrams to send, events, and the time
// by which Tick must be called again. The same core runs on a board under
// TinyGo, in an emulated board over Linux sockets, and by the thousand in the
// simulator, and a run is replayable because time and randomness come from
// the caller.
//
// # The driver loop
//
// A driver owns one Node and one UDP socket bound to Port, with broadcast on:
//
//  1. Boot: n, err := node.New(cfg, now), with the board's name, address and
//     an Incarnation that grows with every boot.
//  2. When a datagram arrives: n.Step(now, fromIP, fromPort, payload).
//  3. When the deadline of the last Ready passes: n.Tick(now).
//  4. After either: rd := n.Ready(); send every rd.Datagrams entry from Port;
//     log or act on rd.Events; arm a timer for rd.Deadline.
//  5. n.Advance(), which lets the node reuse Ready's buffers.
//
// To shut down cleanly, call n.Leave(now) and carry out one last Ready.
//
// # The protocol
//
// Boards broadcast a HEARTBEAT every Heartbeat (±Jitter) to Broadcast:port
// 37020, numbered from 1 at every boot. A member is gone after MissLimit
// intervals of Heartbeat+Jitter without a sign of life: one of its own
// heartbeats, or a witness entry in another board's heartbeat saying "its
// heartbeat n reached me so many ms ago". Witnesses matter: at 10% loss,
// three lost heartbeats in a row happen about once in 1,000 intervals, and
// without them a healthy master would be dropped every few minutes. A witness
// counts only for a heartbeat newer than any known, so relays cannot keep a
// dead member alive by vouching for the same old heartbeat again and again.
// Each heartbeat carries up to Witnesses (16) entries: the master, then the
// other members in turn, each board starting its turn at its own place in
// the member list, so that in every round each member is vouched for by
// about 15 boards rather than all boards vouching for the same few.
//
// The stability promise, tested in sim (election_test.go): a healthy member
// is not dropped, in clusters of up to 100 boards, at up to 30% loss with
// 200 ms of jitter on every frame. Measured over 10 seeds of 10 simulated
// minutes each: no false drop at 64 and 100 boards at 30%, nor at 64 boards
// at 45%; with 8 witnesses and every board rotating in step, 50 boards at
// 10% lost 83 healthy members in 9.5 minutes.
//
// Roles follow from the membership by one rule, so every board computes the
// same roles from the same members:
//
//   - MASTER is the live member with the lowest IPv4 address. It is the
//     registry: it answers HELLO with FULL, the frames of the original
//     MicroPython helpers, so a desktop client that knows only those works.
//     A board that joins a cluster already running (it heard a numbered
//     worker while settling) also broadcasts one HELLO when it settles, as
//     the helpers do, and the registry answers it.
//   - Every other member is WORKERn, where n is the number it claimed and
//     announces in its own heartbeats. After listening for Settle, a board
//     claims the lowest number no live member holds; boards that settle
//     together take the free numbers in address order, so they do not
//     collide. Should two boards claim the same number, the lower address
//     keeps it and the other claims again.
//   - A worker keeps its number until it reboots, however others come and
//     go: numbers may have gaps, and a new board fills the lowest gap. A
//     worker that becomes master keeps its number in reserve and gets it
//     back when it steps down.
//   - A board that has just booted is JOINING until Settle has passed (2
//     heartbeats by default), so a cluster booting together does not flap.
//     Others already count it, so a rebooted lowest-address board is
//     followed as master by the others at once and calls itself MASTER
//     after its own Settle.
//
// A reboot is a new incarnation: its heartbeats carry a higher Incarnation,
// and the others replace the old member (left, reason rebooted) with the new.
//
// # Frames
//
// HELLO [1, name_len, name] and FULL [2, count, (ip[4], name_len, name)*] are
// the original wire format, byte for byte; FULL answers are split over
// several frames when the member list does not fit MaxDatagram. HEARTBEAT (3)
// and LEAVE (4) are this package's; see the Type constants.
//
// With Config.Key (opt-in) every frame carries a 16-byte tag after it, and
// frames without a valid one, or heartbeats no newer than what is known of
// their sender, are dropped and counted; auth.go has the format and what it
// does and does not protect.
package node
