package node

import "strconv"

// Role is what a board does in the cluster: MASTER, WORKERn, or JOINING while
// it has no role yet.
type Role uint16

const (
	// Joining is the role of a board that is still listening after boot, or
	// a worker that has not claimed its number yet.
	Joining Role = 0
	// Master is the registry: the live member with the lowest IPv4 address.
	Master Role = 0xFFFF
)

// Worker returns the role WORKERn.
func Worker(n uint16) Role { return Role(n) }

// WorkerNumber returns n for WORKERn and 0 otherwise.
func (r Role) WorkerNumber() uint16 {
	if r == Master {
		return 0
	}
	return uint16(r)
}

func (r Role) String() string {
	switch r {
	case Joining:
		return "JOINING"
	case Master:
		return "MASTER"
	}
	return "WORKER" + strconv.Itoa(int(r))
}
