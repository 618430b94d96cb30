package node

import (
	"testing"

	"github.com/picosim/picosim/node/mac"
)

func TestSealedFramesOpenOnlyUnchangedAndFromTheirSender(t *testing.T) {
	m, err := mac.New([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	src := Addr{192, 168, 1, 2}
	frame, _ := (&Frame{Type: TypeHeartbeat, Incarnation: 7, Seq: 3, Name: []byte("pico1")}).Append(nil)
	sealed := Seal(m, src, append([]byte(nil), frame...))
	if body, ok := Open(m, src, sealed); !ok || string(body) != string(frame) {
		t.Fatalf("a sealed frame does not open: ok %v", ok)
	}
	for i := range sealed {
		bad := append([]byte(nil), sealed...)
		bad[i] ^= 0x40
		if _, ok := Open(m, src, bad); ok {
			t.Errorf("byte %d changed, and the frame still opens", i)
		}
	}
	if _, ok := Open(m, Addr{192, 168, 1, 3}, sealed); ok {
		t.Error("a frame opens as if sent from another address")
	}
	other, _ := mac.New([]byte("0123456789abcdeX"))
	if _, ok := Open(other, src, sealed); ok {
		t.Error("a frame opens under another key")
	}
	if _, ok := Open(m, src, sealed[:mac.Size]); ok {
		t.Error("a bare tag opens")
	}
}

func TestAKeyOfTheWrongLengthIsRefused(t *testing.T) {
	if _, err := New(Config{Name: "a", IP: Addr{10, 0, 0, 1}, Key: []byte("short")}, 0); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}

// BenchmarkKeyedStep is the receive path of one heartbeat with 16
// witnesses, with and without a key: the authenticator's cost per frame.
func BenchmarkKeyedStep(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		name := "plain"
		var key []byte
		if keyed {
			name, key = "keyed", []byte("0123456789abcdef0123456789abcdef")
		}
		b.Run(name, func(b *testing.B) {
			n, _ := New(Config{Name: "a", IP: Addr{10, 0, 0, 1}, Key: key}, 0)
			f := &Frame{Type: TypeHeartbeat, Incarnation: 1, Name: []byte("pico-sender")}
			for i := range 16 {
				f.Witnesses = append(f.Witnesses, Witness{IP: Addr{10, 0, 1, byte(i)}, Incarnation: 1, Seq: 1})
			}
			src := Addr{10, 0, 0, 2}
			m, _ := mac.New(key)
			frames := make([][]byte, 1024)
			for i := range frames {
				f.Seq = uint32(i + 1)
				p, _ := f.Append(nil)
				if keyed {
					p = Seal(m, src, p)
				}
				frames[i] = p
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(frames) { // a new incarnation keeps every frame fresh
					b.StopTimer()
					i = 0
					f.Incarnation++
					for j := range frames {
						f.Seq = uint32(j + 1)
						p, _ := f.Append(frames[j][:0])
						if keyed {
							p = Seal(m, src, p)
						}
						frames[j] = p
					}
					b.StartTimer()
				}
				n.Step(0, src, Port, frames[i])
				n.Advance()
				i++
			}
		})
	}
}
