package node

import (
	"testing"
	"unsafe"
)

// A simulated cluster of N boards holds N² member records: at 1,000 boards
// every 8 bytes here cost 8 MB, and the 128 MiB budget of the convergence
// benchmark has no room for them.
func TestMemberRecordStaysSmall(t *testing.T) {
	if s := unsafe.Sizeof(member{}); s > 40 {
		t.Fatalf("member is %d bytes, budget 40", s)
	}
}
