package node

import (
	"time"

	"github.com/picosim/picosim/node/outbox"
)

// Member is one board as the cluster knows it.
type Member struct {
	IP          Addr
	Name        string
	Incarnation uint32 // grows with every boot of the board
	Slot        uint16 // the worker number the board has claimed, 0 if none
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// MemberJoined: Member appeared (or reappeared with a new incarnation).
	MemberJoined EventKind = iota + 1
	// MemberLeft: Member is gone, for Reason.
	MemberLeft
	// RoleChanged: this board's own role went from Old to Role.
	RoleChanged
	// MasterChanged: this board now sees Member as the master (Member is
	// zero when it sees none) instead of Prev.
	MasterChanged
)

func (k EventKind) String() string {
	switch k {
	case MemberJoined:
		return "joined"
	case MemberLeft:
		return "left"
	case RoleChanged:
		return "role"
	case MasterChanged:
		return "master"
	}
	return "unknown"
}

// LeaveReason says why a member left.
type LeaveReason uint8

const (
	// Timeout: no evidence of life for MissLimit heartbeat intervals.
	Timeout LeaveReason = iota + 1
	// Left: the member said LEAVE.
	Left
	// Rebooted: the member came back with a newer incarnation.
	Rebooted
	// Replaced: another board speaks from the member's address (a soft AP
	// that forgot its leases gave it away; a router that renumbers).
	Replaced
)

func (r LeaveReason) String() string {
	switch r {
	case Timeout:
		return "timeout"
	case Left:
		return "leave"
	case Rebooted:
		return "rebooted"
	case Replaced:
		return "replaced"
	}
	return ""
}

// Event is something the driver may log or act on.
type Event struct {
	At     time.Duration
	Kind   EventKind
	Member Member // joined, left: the member; master: the new master
	Prev   Member // master: the previous master
	Role   Role   // role: the new role
	Old    Role   // role: the previous role
	Reason LeaveReason
}

// Datagram is a UDP datagram the driver must send from Port.
type Datagram = outbox.Datagram

// Ready is what the node wants done, returned by Node.Ready: Datagrams,
// its Events, and the Deadline of its next Tick (a node always has one).
// Its slices are reused after Advance: send and copy what you need before
// calling it.
type Ready = outbox.Ready[Event]

// Stats counts what a node received and sent.
type Stats struct {
	Received       uint64 // datagrams handed to Step
	Malformed      uint64 // datagrams that failed to decode, ignored
	Ignored        uint64 // valid but not for us: our own echo, stale incarnations, FULLs
	HellosAnswered uint64
	FullsSent      uint64 // FULL frames (an answer may need several)
	HeartbeatsSent uint64
	Claims         uint64 // worker numbers claimed, conflicts included
	// Keyed discovery only (Config.Key):
	Unauthenticated uint64 // datagrams without a valid tag, dropped
	Stale           uint64 // heartbeats not newer than known (replays, duplicates), dropped
}
