package node

import (
	"bytes"
	"errors"
	"testing"
)

// Golden frames, byte for byte as the MicroPython helpers and the desktop
// client of shared/seeds/003 build them.
var golden = []struct {
	name  string
	frame Frame
	wire  []byte
}{
	{"hello", Frame{Type: TypeHello, Name: []byte("DesktopClient")},
		append([]byte{1, 13}, "DesktopClient"...)},
	{"hello without a name", Frame{Type: TypeHello, Name: []byte{}}, []byte{1, 0}},
	{"full with two members", Frame{Type: TypeFull, Entries: []Entry{
		{IP: Addr{192, 168, 1, 2}, Name: []byte("pico1")},
		{IP: Addr{192, 168, 1, 3}, Name: []byte("pico2")},
	}}, []byte{2, 2, 192, 168, 1, 2, 5, 'p', 'i', 'c', 'o', '1', 192, 168, 1, 3, 5, 'p', 'i', 'c', 'o', '2'}},
	{"empty full", Frame{Type: TypeFull}, []byte{2, 0}},
	{"heartbeat", Frame{Type: TypeHeartbeat, Incarnation: 0x01020304, Seq: 0x05060708, Slot: 0x0102, Name: []byte("p"),
		Witnesses: []Witness{{IP: Addr{10, 0, 0, 1}, Incarnation: 7, Seq: 9, AgeMS: 0x0203}}},
		[]byte{3, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 1, 'p', 1, 10, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 9, 2, 3}},
	{"leave", Frame{Type: TypeLeave, Incarnation: 9}, []byte{4, 0, 0, 0, 9}},
}

func TestGoldenFrames(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			got, err := g.frame.Append(nil)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !bytes.Equal(got, g.wire) {
				t.Fatalf("Append = % x, want % x", got, g.wire)
			}
			var f Frame
			if err := f.Decode(g.wire); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			again, _ := f.Append(nil)
			if !bytes.Equal(again, g.wire) {
				t.Fatalf("round trip = % x, want % x", again, g.wire)
			}
		})
	}
}

// TestDesktopClientDecodesFull replays the Python client's decode_full from
// shared/seeds/003 on a FULL the node encodes.
func TestDesktopClientDecodesFull(t *testing.T) {
	f := Frame{Type: TypeFull, Entries: []Entry{{IP: Addr{192, 168, 1, 2}, Name: []byte("pico1")}, {IP: Addr{192, 168, 1, 9}, Name: []byte("x")}}}
	data, _ := f.Append(nil)
	peers := map[string]string{}
	if len(data) < 2 || data[0] != 2 {
		t.Fatal("not a FULL")
	}
	count, offset := int(data[1]), 2
	for range count {
		if len(data) < offset+5 {
			break
		}
		ip := Addr(data[offset : offset+4])
		offset += 4
		n := int(data[offset])
		offset++
		peers[ip.String()] = string(data[offset : offset+n])
		offset += n
	}
	if peers["192.168.1.2"] != "pico1" || peers["192.168.1.9"] != "x" || len(peers) != 2 {
		t.Fatalf("desktop client decoded %v", peers)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	long := bytes.Repeat([]byte{'a'}, 33)
	cases := []struct {
		name string
		wire []byte
		want error
	}{
		{"empty", nil, ErrEmpty},
		{"unknown type", []byte{9, 0}, ErrUnknownType},
		{"type zero", []byte{0}, ErrUnknownType},
		{"hello without length", []byte{1}, ErrTruncated},
		{"hello name past the end", []byte{1, 5, 'a', 'b'}, ErrTruncated},
		{"hello name over 32 bytes", append([]byte{1, 33}, long...), ErrNameTooLong},
		{"hello with trailing bytes", []byte{1, 1, 'a', 'b'}, ErrTrailing},
		{"full without count", []byte{2}, ErrTruncated},
		{"full count larger than entries", []byte{2, 2, 10, 0, 0, 1, 1, 'a'}, ErrTruncated},
		{"full truncated address", []byte{2, 1, 10, 0}, ErrTruncated},
		{"full name past the end", []byte{2, 1, 10, 0, 0, 1, 4, 'a'}, ErrTruncated},
		{"full with trailing bytes", []byte{2, 0, 0}, ErrTrailing},
		{"heartbeat truncated incarnation", []byte{3, 0, 0}, ErrTruncated},
		{"heartbeat witness count past the end", []byte{3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 10, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}, ErrTruncated},
		{"leave truncated", []byte{4, 0, 0, 0}, ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f Frame
			if err := f.Decode(c.wire); !errors.Is(err, c.want) {
				t.Fatalf("Decode(% x) = %v, want %v", c.wire, err, c.want)
			}
		})
	}
}

func TestAppendRejectsWhatTheWireCannotCarry(t *testing.T) {
	f := Frame{Type: TypeHello, Name: bytes.Repeat([]byte{'a'}, 33)}
	if _, err := f.Append(nil); !errors.Is(err, ErrNameTooLong) {
		t.Fatalf("33-byte name: %v", err)
	}
	f = Frame{Type: TypeFull, Entries: make([]Entry, 256)}
	if _, err := f.Append(nil); !errors.Is(err, ErrTooMany) {
		t.Fatalf("256 entries: %v", err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	names := [][]byte{{}, []byte("a"), bytes.Repeat([]byte{'z'}, MaxName)}
	for _, name := range names {
		for _, f := range []Frame{
			{Type: TypeHello, Name: name},
			{Type: TypeFull, Entries: []Entry{{IP: Addr{1, 2, 3, 4}, Name: name}, {IP: Addr{255, 255, 255, 255}, Name: name}}},
			{Type: TypeHeartbeat, Incarnation: 0xFFFFFFFF, Slot: 0xFFFF, Name: name, Seq: 0xFFFFFFFF, Witnesses: []Witness{{Addr{1, 1, 1, 1}, 1, 2, 0xFFFF}}},
			{Type: TypeLeave, Incarnation: 1},
		} {
			wire, err := f.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			var g Frame
			if err := g.Decode(wire); err != nil {
				t.Fatalf("%s: %v", f.Type, err)
			}
			again, _ := g.Append(nil)
			if !bytes.Equal(wire, again) {
				t.Fatalf("%s: % x != % x", f.Type, wire, again)
			}
		}
	}
}

// FuzzDecode: Decode never panics, and what it accepts re-encodes to the same
// bytes. Seeds live in testdata/fuzz/FuzzDecode; run with
// go test ./node -run '^$' -fuzz FuzzDecode -fuzztime 30s
func FuzzDecode(f *testing.F) {
	for _, g := range golden {
		f.Add(g.wire)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var fr Frame
		if err := fr.Decode(p); err != nil {
			return
		}
		again, err := fr.Append(nil)
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("Decode/Append changed the frame:\n in  % x\n out % x", p, again)
		}
	})
}

func BenchmarkDecodeHeartbeat(b *testing.B) {
	f := Frame{Type: TypeHeartbeat, Incarnation: 1, Slot: 3, Name: []byte("pico-0042"), Witnesses: make([]Witness, 8)}
	wire, _ := f.Append(nil)
	var g Frame
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Decode(wire); err != nil {
			b.Fatal(err)
		}
	}
}
