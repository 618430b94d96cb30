package node

import "strconv"

// Addr is an IPv4 address in network byte order. The core uses its own type
// rather than net/netip so that it stays trivially portable to TinyGo and the
// wire encoding is a plain copy.
type Addr [4]byte

// Less orders addresses numerically: the registry is the lowest.
func (a Addr) Less(b Addr) bool { return a.Uint32() < b.Uint32() }

// Uint32 returns the address as a big-endian integer.
func (a Addr) Uint32() uint32 {
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}

// IsZero reports whether a is 0.0.0.0.
func (a Addr) IsZero() bool { return a == Addr{} }

func (a Addr) String() string {
	b := make([]byte, 0, 15)
	for i, x := range a {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(x), 10)
	}
	return string(b)
}

// ParseAddr reads a dotted IPv4 address ("192.168.4.1"), without
// allocating: the firmware and apps read addresses from text.
func ParseAddr(s string) (Addr, bool) {
	var a Addr
	i := 0
	for part := 0; part < 4; part++ {
		n, digits := 0, 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && digits < 3 {
			n = n*10 + int(s[i]-'0')
			i, digits = i+1, digits+1
		}
		if digits == 0 || n > 255 {
			return a, false
		}
		a[part] = byte(n)
		if part < 3 {
			if i >= len(s) || s[i] != '.' {
				return a, false
			}
			i++
		}
	}
	return a, i == len(s)
}
