package rp2040

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/picosim/picosim/firmware"
)

// The Pico W's flash: 2 MiB at 0x10000000, erased in 4 KiB sectors.
const (
	flashBase   = 0x10000000
	flashSize   = 2 << 20
	flashSector = 4096
)

// Factory writes a board's flash file as a lab's factory would flash a new
// board: the image from the UF2, and the firmware's files (a formatted
// store, then these) in the settings store, which FlashStore keeps at the
// very end of the flash whatever the image's size. A file that exists is
// left alone: a board keeps its flash across runs, as one on a desk does.
func Factory(uf2, path string, files map[string][]byte) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	img := make([]byte, flashSize)
	for i := range img {
		img[i] = 0xff
	}
	if err := loadUF2(uf2, img); err != nil {
		return err
	}
	// The store's device: the last 256 KiB, as FlashStore addresses its two
	// copies from the end.
	dev := &memDevice{b: img[flashSize-256<<10:]}
	store, err := firmware.OpenFlashStore(dev)
	if err != nil {
		return err
	}
	if err := firmware.Format(store); err != nil {
		return err
	}
	for name, data := range files {
		if err := store.WriteFile(name, data); err != nil {
			return err
		}
	}
	return os.WriteFile(path, img, 0o644)
}

// loadUF2 writes a UF2's main-flash blocks into img.
func loadUF2(path string, img []byte) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	n := 0
	for off := 0; off+512 <= len(data); off += 512 {
		b := data[off : off+512]
		le := binary.LittleEndian
		if le.Uint32(b) != 0x0a324655 || le.Uint32(b[4:]) != 0x9e5d5157 || le.Uint32(b[508:]) != 0x0ab16f30 {
			return fmt.Errorf("%s: block %d is not a UF2 block", path, off/512)
		}
		flags, target, size := le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint32(b[16:])
		if flags&1 != 0 {
			continue // not main flash
		}
		if size > 476 || target < flashBase || target+size > flashBase+flashSize {
			return fmt.Errorf("%s: block %d writes %d bytes at %#x, outside the flash", path, off/512, size, target)
		}
		copy(img[target-flashBase:], b[32:32+size])
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no UF2 blocks", path)
	}
	return nil
}

// memDevice is a firmware.BlockDevice over bytes of NOR flash.
type memDevice struct{ b []byte }

func (d *memDevice) ReadAt(p []byte, off int64) (int, error) { return copy(p, d.b[off:]), nil }
func (d *memDevice) WriteAt(p []byte, off int64) (int, error) {
	for i, v := range p { // programming only clears bits
		d.b[off+int64(i)] &= v
	}
	return len(p), nil
}
func (d *memDevice) Size() int64           { return int64(len(d.b)) }
func (d *memDevice) EraseBlockSize() int64 { return flashSector }
func (d *memDevice) EraseBlocks(start, n int64) error {
	for i := start * flashSector; i < (start+n)*flashSector; i++ {
		d.b[i] = 0xff
	}
	return nil
}
