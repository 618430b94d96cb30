// Package firmware provides the program every picosim board runs: discovery
// and election (package node), the piconetcontrol server (node/control), the
// status LED, board settings and the flash image with its update rollback,
// over a small Board interface. One program, and an adapter per platform:
//
//   - firmware/pico-w: a Raspberry Pi Pico W under TinyGo (CYW43439 radio,
//     lneto network stack, machine GPIO). It is a Go module of its own.
//   - firmware/host: a Linux process over kernel sockets, with emulated pins
//     and LED; picosim runs one per emulated board, each in its own network
//     namespace.
//
// Like the cores it composes, the program does no I/O, starts no goroutines
// and never reads a clock: an adapter's loop hands it what arrived and what
// time it is, and it calls the Board to send, write pins and print. That is
// what lets one program run on a microcontroller and as a Linux process, and
// what lets this package's tests drive it without a network.
//
// # The adapter loop
//
//  1. Boot: p, err := Boot(board, flash, now). ErrCrashed means the image in
//     flash fails its health check: wait BootFailDelay (the watchdog), call
//     Rollback(flash), and boot again.
//  2. When the radio has joined the network and has an address: p.Joined(now,
//     ip, broadcast). Discovery starts; until then the LED blinks
//     "connecting". p.Lost(now) when the association is lost.
//  3. Hand it every datagram of the discovery port (p.Datagram), every
//     control connection's opening, data and end (p.Opened, p.Received,
//     p.Closed), and call p.Tick(now) when p.Deadline() passes.
//  4. After each call, look at p.Halted(): a reset, an update or a deep sleep
//     means closing every socket and booting again (after the sleep).
//
// # What the harness sees
//
// The board's console (USB serial on a Pico W, standard output on Linux)
// carries one JSON object per line: an event ({"ms": 1234, "event": "role",
// "role": "MASTER", "old": "JOINING"}) for everything the board sees happen,
// and after each change a state line ({"ms": ..., "state": {...}}: role,
// master, members, pins, recent pin changes, counters). The same state
// answers the control action get_state, for boards the harness can reach
// only over the network. State is its Go form, for readers of either.
package firmware
