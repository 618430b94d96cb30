package node

import (
	"testing"
	"unsafe"
)

// A simulated cluster of N boards holds N² member records: at 1,000 boards
// every 8 bytes here cost 8 MB, and the 128 MiB budget of the convergence
// benchmark has no room for them. The part every heartbeat reads (the
// sender and sixteen witnesses) stays at 16 bytes, so that a board's table
// of 1,000 members is 16 KB and a thousand of them fit the machine's cache.
// The cold part grew by 8 bytes (the last count heard from the member
// itself, and when) so that a witness about another board at the same
// address cannot poison it: 8 MB more at 1,000 boards.
func TestMemberRecordStaysSmall(t *testing.T) {
	if s := unsafe.Sizeof(member{}); s > 16 {
		t.Fatalf("member is %d bytes, budget 16", s)
	}
	if s := unsafe.Sizeof(member{}) + unsafe.Sizeof(coldMember{}); s > 48 {
		t.Fatalf("member and coldMember are %d bytes, budget 48", s)
	}
}
