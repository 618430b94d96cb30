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
// write_pin needs a timeout: when it ends, the pin goes back to the value it
// had, exactly once, whatever happened to the connection. A later write to
// the same pin replaces the pending revert; a write of the value the pin
// already holds schedules nothing. With Config.RevertOnLoss, every held pin
// also reverts at once when the board loses its master or the connection
// that wrote it (off by default, as on the real server).
//
// # The driver loop
//
// As with package node: call Open, Receive and Closed as connections come
// and go, Tick at Ready().Deadline, then carry out Ready and call Advance.
package control
