// Package firmware provides the program every picosim board runs: discovery
// and election (package node), the piconetcontrol server (node/control), the
// apps of node/apps, the status LED, board settings and the flash image with
// its update rollback, over a small Board interface. One program, and an
// adapter per platform:
//
//   - firmware/pico-w: a Raspberry Pi Pico W under TinyGo (CYW43439 radio,
//     lneto network stack, machine GPIO). It is a Go module of its own.
//   - firmware/host: a Linux process over kernel sockets, with emulated pins
//     and LED; picosim runs one per emulated board, each in its own network
//     namespace.
//   - package sim: a virtual board over a host of the simulated LAN, in
//     simulated time. The simulator runs this program and nothing else.
//
// Like the cores it composes, the program does no I/O, starts no goroutines
// and never reads a clock: an adapter's loop hands it what arrived and what
// time it is, and it calls the Board to send, write pins and print. That is
// what lets one program run on a microcontroller and as a Linux process, and
// what lets this package's tests drive it without a network.
//
// # The adapter loop
//
//  1. Boot: p, retry, err := Start(board, flash, opt, now). Start never
//     waits: when the image in flash crashes at boot it returns no program
//     and the watchdog's delay; call Start again then, and it rolls the last
//     update back first.
//  2. When the radio has joined the network and has an address: p.Joined(now,
//     ip, broadcast). The program opens its ports (Board.Listen: discovery,
//     the control port, its apps'), discovery starts, and the LED stops
//     blinking "connecting". p.Lost(now) when the association is lost.
//  3. Hand it every datagram of its ports (p.Datagram), every connection's
//     opening, data and end (p.Opened, p.Connected for its own dials,
//     p.Received, p.Closed), and call p.Tick(now) when p.Deadline() passes.
//  4. After each call, look at p.Halted(): a reset, an update or a deep sleep
//     means closing every socket and booting again (after the sleep).
//
// Apps (node/apps) run inside the program: the settings name those that
// start at boot, and the control actions start_app and stop_app change that
// list, so that a scenario with apps runs on every target.
//
// # What the harness sees
//
// The board's console (USB serial on a Pico W, standard output on Linux)
// carries one JSON object per line: an event ({"ms": 1234, "event": "role",
// "role": "MASTER", "old": "JOINING"}) for everything the board sees happen,
// and after each change a state line ({"ms": ..., "state": {...}}: role,
// master, members, pins, recent pin changes, counters, apps). The same state
// answers the control action get_state, for boards the harness can reach
// only over the network; Event and State are their Go forms, for readers of
// either. A simulator of thousands of boards sets Options.Quiet and takes
// events from Options.OnEvent and the state from Program.State instead.
package firmware
