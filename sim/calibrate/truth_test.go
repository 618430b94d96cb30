package calibrate

import (
	"encoding/binary"
	"strings"
)

// truth is what the capture's comments say happened to one sender's
// heartbeats at one receiver: netsim writes who missed each frame, which
// the calibrator must not read but a test may.
type truth struct {
	sent, lost int
	bursts     []int           // lengths of runs of consecutive lost frames
	fate       map[uint32]bool // by seq (one incarnation): lost
}

func (t truth) loss() float64 { return float64(t.lost) / float64(t.sent) }

func (t truth) meanBurst() float64 {
	if len(t.bursts) == 0 {
		return 0
	}
	s := 0
	for _, b := range t.bursts {
		s += b
	}
	return float64(s) / float64(len(t.bursts))
}

// groundTruth walks a netsim capture (little-endian, Ethernet, IPv4, UDP)
// and counts the frames from the sender's address that the comments say
// did not reach the receiver, by name.
func groundTruth(capture []byte, from [4]byte, to string) truth {
	t := truth{fate: map[uint32]bool{}}
	run := 0
	le := binary.LittleEndian
	for p := capture; len(p) >= 12; {
		typ, n := le.Uint32(p), int(le.Uint32(p[4:]))
		if n < 12 || n > len(p) {
			break
		}
		b := p[8 : n-4]
		p = p[n:]
		if typ != 6 {
			continue
		}
		capLen := int(le.Uint32(b[12:]))
		pkt := b[20 : 20+capLen]
		if len(pkt) < 14+20+8 || [4]byte(pkt[14+12:14+16]) != from || binary.BigEndian.Uint16(pkt[14+20+2:]) != 37020 || pkt[14+20+8] != 3 {
			continue
		}
		comment := ""
		if opts := b[20+(capLen+3)&^3:]; len(opts) >= 4 && le.Uint16(opts) == 1 {
			comment = string(opts[4 : 4+int(le.Uint16(opts[2:]))])
		}
		t.sent++
		seq := binary.BigEndian.Uint32(pkt[14+20+8+5:])
		lost := strings.HasPrefix(comment, "dropped") || strings.Contains(comment, " "+to+" (")
		t.fate[seq] = lost
		if strings.HasPrefix(comment, "dropped") || strings.Contains(comment, " "+to+" (") {
			t.lost++
			run++
		} else if run > 0 {
			t.bursts = append(t.bursts, run)
			run = 0
		}
	}
	return t
}
