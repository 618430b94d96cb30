package firmware_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/picosim/picosim/firmware"
)

// chip is a NOR flash as a Pico W's: erase sets 4 KiB blocks to 0xff,
// programming can only clear bits, in whole 256-byte pages. After cutAfter
// more page writes the power goes: later writes and erases do nothing.
type chip struct {
	mem      []byte
	cutAfter int // -1: never
	writes   int
}

var errPowerCut = errors.New("power cut")

func newChip(size int) *chip {
	c := &chip{mem: bytes.Repeat([]byte{0xff}, size), cutAfter: -1}
	return c
}

func (c *chip) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(c.mem)) {
		return 0, errors.New("read past the end")
	}
	return copy(p, c.mem[off:]), nil
}

func (c *chip) WriteAt(p []byte, off int64) (int, error) {
	if off%256 != 0 || len(p)%256 != 0 {
		return 0, fmt.Errorf("write of %d bytes at %d: the ROM programs whole 256-byte pages", len(p), off)
	}
	for i := 0; i < len(p); i += 256 {
		if c.cutAfter >= 0 && c.writes >= c.cutAfter {
			return i, errPowerCut
		}
		c.writes++
		for j := range 256 {
			c.mem[off+int64(i+j)] &= p[i+j]
		}
	}
	return len(p), nil
}

func (c *chip) Size() int64           { return int64(len(c.mem)) }
func (c *chip) EraseBlockSize() int64 { return 4096 }
func (c *chip) EraseBlocks(start, n int64) error {
	if c.cutAfter >= 0 && c.writes >= c.cutAfter {
		return errPowerCut
	}
	for i := start * 4096; i < (start+n)*4096; i++ {
		c.mem[i] = 0xff
	}
	return nil
}

var _ firmware.BlockDevice = (*chip)(nil)

func open(t *testing.T, c *chip) *firmware.FlashStore {
	t.Helper()
	s, err := firmware.OpenFlashStore(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFlashStoreKeepsFilesAcrossReboots(t *testing.T) {
	c := newChip(1 << 20)
	s := open(t, c)
	if len(s.Names()) != 0 {
		t.Fatalf("a blank chip has files: %v", s.Names())
	}
	s.WriteFile("config/config_wlan.json", []byte(`{"ssid": "lab"}`))
	s.WriteFile("main.py", bytes.Repeat([]byte("x"), 20000))
	s.WriteFile("empty", nil)
	s.Remove("empty")
	s.Remove("never there")
	again := open(t, c)
	if got, _ := again.ReadFile("config/config_wlan.json"); string(got) != `{"ssid": "lab"}` {
		t.Fatalf("after a reboot: %q", got)
	}
	if got, _ := again.ReadFile("main.py"); len(got) != 20000 {
		t.Fatalf("main.py has %d bytes", len(got))
	}
	if _, ok := again.ReadFile("empty"); ok || len(again.Names()) != 2 {
		t.Fatalf("files %v", again.Names())
	}
	// The store sits at the end: the free flash after a bigger program
	// starts later, and the files stay where they are.
	for i := 0; i < 512<<10; i++ {
		if c.mem[i] != 0xff {
			t.Fatalf("the store wrote at %d, in the first half of the device", i)
		}
	}
}

func TestFlashStoreRefusesWhatDoesNotFitAndKeepsWhatItHad(t *testing.T) {
	c := newChip(1 << 20)
	s := open(t, c)
	s.WriteFile("a", []byte("1"))
	if err := s.WriteFile("big", make([]byte, firmware.StoreSlot)); !errors.Is(err, firmware.ErrStoreFull) {
		t.Fatalf("a file as big as the store: %v", err)
	}
	if _, ok := s.ReadFile("big"); ok {
		t.Fatal("a file that was not saved is still in memory")
	}
	if got, _ := open(t, c).ReadFile("a"); string(got) != "1" {
		t.Fatal("lost a file")
	}
	if _, err := firmware.OpenFlashStore(newChip(64 << 10)); err == nil {
		t.Fatal("a device too small for two copies was accepted")
	}
}

// TestFlashStoreSurvivesAPowerCutAtAnyPage cuts the power after every
// possible number of page writes during a save: the board boots with the
// files as they were before that save, or as they are after it, never a mix
// and never nothing.
func TestFlashStoreSurvivesAPowerCutAtAnyPage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	before := map[string][]byte{}
	c := newChip(1 << 20)
	s := open(t, c)
	for i := range 5 {
		name := fmt.Sprintf("file%d", i)
		before[name] = bytes.Repeat([]byte{byte(i)}, rng.IntN(3000))
		s.WriteFile(name, before[name])
	}
	saved := append([]byte(nil), c.mem...)
	newData := bytes.Repeat([]byte{0xab}, 9000) // about 36 pages
	for cut := 0; ; cut++ {
		c := &chip{mem: append([]byte(nil), saved...), cutAfter: cut}
		s := open(t, c)
		err := s.WriteFile("file2", newData)
		after := open(t, &chip{mem: c.mem, cutAfter: -1})
		got, _ := after.ReadFile("file2")
		switch {
		case err == nil && !bytes.Equal(got, newData):
			t.Fatalf("cut after %d pages: the save succeeded and the file reads back as %d bytes", cut, len(got))
		case err != nil && !bytes.Equal(got, before["file2"]):
			t.Fatalf("cut after %d pages: file2 is %d bytes, neither the old %d nor the new %d", cut, len(got), len(before["file2"]), len(newData))
		}
		for name, want := range before {
			if name == "file2" {
				continue
			}
			if got, _ := after.ReadFile(name); !bytes.Equal(got, want) {
				t.Fatalf("cut after %d pages: %s lost", cut, name)
			}
		}
		if err == nil {
			if cut < 2 {
				t.Fatalf("a save of 9 KB took %d page writes", cut)
			}
			return
		}
	}
}

func TestFlashStoreFallsBackToTheOlderCopyWhenTheNewerIsDamaged(t *testing.T) {
	c := newChip(1 << 20)
	s := open(t, c)
	s.WriteFile("v", []byte("one"))
	s.WriteFile("v", []byte("two")) // the second copy
	if got, _ := open(t, c).ReadFile("v"); string(got) != "two" {
		t.Fatalf("newest: %q", got)
	}
	// A bit flips in the newer copy's body: its CRC no longer matches.
	second := len(c.mem) - firmware.StoreSlot
	for i := second + 16; i < second+64; i++ {
		if c.mem[i] != 0xff {
			c.mem[i] ^= 0x01
			break
		}
	}
	if got, _ := open(t, c).ReadFile("v"); string(got) != "one" {
		t.Fatalf("with the newer copy damaged: %q", got)
	}
	// Both gone: a blank store, which Boot formats.
	for i := len(c.mem) - 2*firmware.StoreSlot; i < len(c.mem); i += 4096 {
		c.mem[i] = 0
	}
	if names := open(t, c).Names(); len(names) != 0 {
		t.Fatalf("garbage read as files %v", names)
	}
}

// FuzzOpenFlashStore hands the store records whose checksums are right and
// whose bodies are anything: it must boot with some files or none, never
// crash or run out of memory.
func FuzzOpenFlashStore(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 'a', 1, 0, 0, 0, 'x'})
	f.Add([]byte{2, 0, 1, 0, 'a', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > firmware.StoreSlot-16 {
			return
		}
		c := newChip(128 << 10)
		at := len(c.mem) - 2*firmware.StoreSlot
		rec := append([]byte("PSF2"), 1, 0, 0, 0)
		rec = binary.LittleEndian.AppendUint32(rec, uint32(len(body)))
		rec = binary.LittleEndian.AppendUint32(rec, crc32.ChecksumIEEE(body))
		copy(c.mem[at:], append(rec, body...))
		s, err := firmware.OpenFlashStore(c)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, n := range s.Names() {
			d, _ := s.ReadFile(n)
			total += len(n) + len(d)
		}
		if total > len(body) {
			t.Fatalf("%d bytes of files from a %d-byte body", total, len(body))
		}
		if len(s.Names()) > 0 { // what it read, it can write back
			if err := s.WriteFile("more", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	})
}
