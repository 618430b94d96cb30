// Package control provides the board side of the piconetcontrol protocol as a
// sans-I/O state machine: bytes from controller connections in; replies, pin
// changes, LED changes and board actions (reset, sleep, update) out.
//
// The wire format is piconetcontrol's (server 1.13): one JSON object per
// command, ended by "\n", several per connection; empty lines are ignored
// (the client ends its last command with "\n\n"). A reply is the request,
// plus "time_received" (nanoseconds) and the fields the action adds, then
// "\n". An error reply is the parsed request plus "error" (the message) and
// "exception" (a Python class name such as ValueError); a line that is not
// JSON gets just those two fields.
//
// # Fail-safe
//
// write_pin needs a timeout (0 to MaxTimeout seconds). The promise, checked
// over random schedules by TestFailSafeProperty:
//
//	When the last unexpired timed write on a pin ends, the pin returns to
//	the value it had before the first of those writes, exactly once.
//
// A write that changes a pin with no pending revert begins a hold and
// records the value to return to. A later write while it is held replaces
// the hold's end (the latest timeout counts: it is what the controller asked
// last) but never what it returns to, so no sequence of writes can leave a
// written value in place for good. A write of the value the pin already
// holds changes and schedules nothing, as on the real server. The hold ends
// at its deadline; with Config.RevertOnLoss also at once when the board
// loses its master or the connection of the latest write closes (off by
// default, as on the real server); a reset, deep sleep or update ends it by
// putting every pin back at its setup value, which is where an unheld pin
// already was.
//
// Light sleep does not suspend the fail-safe: a revert due while the board
// sleeps wakes it (Tick runs at Deadline, which a sleep does not postpone
// past a revert), and a command wakes it (seed 002: "if in light sleep, the
// server wakes up upon receiving a command"); the driver calls Wake.
//
// Where piconetcontrol 1.13 differs: it schedules one task per write that
// writes the opposite of the written value after its timeout, so writing 1
// (timeout 5) at 12 s and 0 (timeout 2) at 13 s turns the pin back on from
// 15 s to 17 s; a timeout
// is slept in light sleep, and a timeout beyond 2^29 ms wraps MicroPython's
// tick counter. The safe reading is kept here.
//
// # Limits
//
// A board serves any host on its WiFi, so no client may hold it up: a line
// longer than MaxCommand is skipped as it streams in; a connection is idle
// until it sends a whole command (bytes without a newline do not count) and
// is closed after Config.IdleTimeout of that; one peer address holds at most
// MaxConns-1 connections (OpenFrom), so another host always finds a slot;
// at MaxConns a connection idle for Config.Evict gives way to a newcomer.
// A client that does not read is the driver's to bound: the firmware cuts
// off a connection that owes its peer more than firmware.MaxBacklog bytes.
//
// # Keys
//
// With Config.Key every command must be signed (auth.go has the format and
// the threat it answers); without one the protocol is piconetcontrol's.
//
// # The driver loop
//
// As with package node: call Open, Receive and Closed as connections come
// and go, Tick at Ready().Deadline, then carry out Ready and call Advance.
package control
