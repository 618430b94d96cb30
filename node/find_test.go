package node

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// find gives the place of an address in the table, present or not, for
// tables of every shape its guesses may meet: consecutive addresses, evenly
// spread ones with gaps, and a few far from the rest.
func TestFindAgreesWithASortedSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := &Node{}
		size := 1 + rng.IntN(400)
		keys := map[uint32]bool{}
		base := uint32(0x0a2a0000)
		for len(keys) < size {
			var k uint32
			switch trial % 3 {
			case 0:
				k = base + uint32(len(keys))
			case 1:
				k = base + uint32(rng.IntN(4*size))
			default:
				k = base + uint32(rng.IntN(size))
				if rng.IntN(10) == 0 {
					k = base + uint32(rng.IntN(1<<16))
				}
			}
			keys[k] = true
		}
		sorted := slices.Sorted(maps.Keys(keys))
		for _, k := range sorted {
			n.members = append(n.members, member{IP: Addr{byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}})
		}
		for range 200 {
			k := base - 5 + uint32(rng.IntN(1<<16+10))
			if rng.IntN(2) == 0 {
				k = sorted[rng.IntN(len(sorted))]
			}
			want, found := slices.BinarySearch(sorted, k)
			got, ok := n.findKey(k)
			if got != want || ok != found {
				t.Fatalf("trial %d, %d members: findKey(%#x) = %d, %v; want %d, %v", trial, size, k, got, ok, want, found)
			}
		}
	}
}
