package firmware

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// BlockDevice is the part of a board's raw flash that FlashStore uses: on a
// Pico W, TinyGo's machine.Flash (the space after the program).
type BlockDevice interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Size() int64
	EraseBlockSize() int64
	EraseBlocks(start, n int64) error
}

// StoreSlot is the room each of FlashStore's two copies takes: the settings,
// an update's files (piconetcontrol's server is about 16 KB) and the copies
// of what it replaced, with room to spare.
const StoreSlot = 64 << 10

// FlashStore is a Flash kept on a block device. Every file lives in memory
// (a MemFlash); each change saves all of them as one record, alternately in
// one of two copies at the very end of the device, stamped with a sequence
// number and a CRC. A power cut in the middle of a save leaves the other
// copy whole, and a new image of another size, which moves where the free
// flash begins, leaves the end where it is. Files are few and small, and a
// board writes a handful per boot.
//
// Record: "PSF2", seq u32, length u32, crc32 (IEEE) u32 of the body, then the
// body: count u16, then per file name length u16, name, data length u32,
// data. Little-endian.
type FlashStore struct {
	MemFlash
	dev    BlockDevice
	base   [2]int64 // where each copy starts
	seq    uint32   // of the newest record
	next   int      // the copy the next save writes
	blocks int64    // erase blocks per copy
	first  [2]int64
}

const (
	storeMagic  = "PSF2"
	storeHeader = 16
)

// ErrStoreFull is a save that does not fit in StoreSlot.
var ErrStoreFull = errors.New("flash: the files do not fit")

// OpenFlashStore reads the newest whole record of dev. A device with none
// (blank, or both copies damaged) gives an empty store, which Boot formats.
func OpenFlashStore(dev BlockDevice) (*FlashStore, error) {
	eb := dev.EraseBlockSize()
	if eb <= 0 {
		return nil, errors.New("flash: no erase block size")
	}
	blocks := (StoreSlot + eb - 1) / eb
	end := dev.Size() / eb // in blocks
	if end < 2*blocks {
		return nil, errors.New("flash: too small for the store")
	}
	s := &FlashStore{MemFlash: MemFlash{}, dev: dev, blocks: blocks}
	for i := range s.base {
		s.first[i] = end - int64(2-i)*blocks
		s.base[i] = s.first[i] * eb
	}
	best := -1
	var bestFiles MemFlash
	for i := range s.base {
		seq, files, ok := s.read(i)
		if ok && (best < 0 || int32(seq-s.seq) > 0) {
			best, s.seq, bestFiles = i, seq, files
		}
	}
	if best >= 0 {
		s.MemFlash, s.next = bestFiles, 1-best
	}
	return s, nil
}

// read decodes copy i.
func (s *FlashStore) read(i int) (seq uint32, files MemFlash, ok bool) {
	var h [storeHeader]byte
	if _, err := s.dev.ReadAt(h[:], s.base[i]); err != nil || string(h[:4]) != storeMagic {
		return 0, nil, false
	}
	seq = binary.LittleEndian.Uint32(h[4:])
	n := binary.LittleEndian.Uint32(h[8:])
	if int64(n) > s.blocks*s.dev.EraseBlockSize()-storeHeader {
		return 0, nil, false
	}
	body := make([]byte, n)
	if _, err := s.dev.ReadAt(body, s.base[i]+storeHeader); err != nil || crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(h[12:]) {
		return 0, nil, false
	}
	files, ok = decodeFiles(body)
	return seq, files, ok
}

// WriteFile implements Flash, saving at once.
func (s *FlashStore) WriteFile(name string, data []byte) error {
	old, had := s.MemFlash[name]
	s.MemFlash.WriteFile(name, data)
	if err := s.save(); err != nil {
		if had {
			s.MemFlash[name] = old
		} else {
			delete(s.MemFlash, name)
		}
		return err
	}
	return nil
}

// Remove implements Flash, saving at once.
func (s *FlashStore) Remove(name string) error {
	old, ok := s.MemFlash[name]
	if !ok {
		return nil
	}
	delete(s.MemFlash, name)
	if err := s.save(); err != nil {
		s.MemFlash[name] = old
		return err
	}
	return nil
}

// save writes every file as the next record, a flash page at a time from
// one small buffer: a board's heap holds the files once, not three times
// (whole record, then the ROM's padded copy).
func (s *FlashStore) save() error {
	names := s.Names()
	size := 2
	for _, n := range names {
		size += 2 + len(n) + 4 + len(s.MemFlash[n])
	}
	if int64(size) > s.blocks*s.dev.EraseBlockSize()-storeHeader {
		return ErrStoreFull
	}
	w := pageWriter{dev: s.dev, off: s.base[s.next]}
	var head [storeHeader]byte
	copy(head[:], storeMagic)
	binary.LittleEndian.PutUint32(head[4:], s.seq+1)
	binary.LittleEndian.PutUint32(head[8:], uint32(size))
	var crc uint32
	encodeFiles(func(p []byte) { crc = crc32.Update(crc, crc32.IEEETable, p) }, s.MemFlash, names)
	binary.LittleEndian.PutUint32(head[12:], crc)
	eb := s.dev.EraseBlockSize()
	if err := s.dev.EraseBlocks(s.first[s.next], (int64(storeHeader+size)+eb-1)/eb); err != nil {
		return err
	}
	w.write(head[:])
	encodeFiles(w.write, s.MemFlash, names)
	if err := w.flush(); err != nil {
		return err
	}
	s.seq++
	s.next = 1 - s.next
	return nil
}

// pageWriter writes to flash in whole pages (the RP2040 boot ROM programs
// 256-byte pages), padding the last with 0xff as erased flash reads.
type pageWriter struct {
	dev  BlockDevice
	off  int64
	page [256]byte
	n    int
	err  error
}

func (w *pageWriter) write(p []byte) {
	for len(p) > 0 && w.err == nil {
		k := copy(w.page[w.n:], p)
		w.n += k
		p = p[k:]
		if w.n == len(w.page) {
			w.err = w.flush()
		}
	}
}

func (w *pageWriter) flush() error {
	if w.err != nil || w.n == 0 {
		return w.err
	}
	for i := w.n; i < len(w.page); i++ {
		w.page[i] = 0xff
	}
	_, w.err = w.dev.WriteAt(w.page[:], w.off)
	w.off += int64(len(w.page))
	w.n = 0
	return w.err
}

// encodeFiles streams the body of a store record, the files of m under
// names, to put: count u16, then per file name length u16, name, data
// length u32, data (little-endian).
func encodeFiles(put func([]byte), m MemFlash, names []string) {
	var n [4]byte
	binary.LittleEndian.PutUint16(n[:], uint16(len(names)))
	put(n[:2])
	for _, name := range names {
		binary.LittleEndian.PutUint16(n[:], uint16(len(name)))
		put(n[:2])
		put([]byte(name))
		binary.LittleEndian.PutUint32(n[:], uint32(len(m[name])))
		put(n[:4])
		put(m[name])
	}
}

// decodeFiles reads a record's body; ok is false for anything that is not
// exactly one. The files alias b.
func decodeFiles(b []byte) (MemFlash, bool) {
	if len(b) < 2 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(b))
	b = b[2:]
	m := MemFlash{}
	for ; n > 0; n-- {
		if len(b) < 2 {
			return nil, false
		}
		l := int(binary.LittleEndian.Uint16(b))
		if len(b) < 2+l+4 {
			return nil, false
		}
		name := string(b[2 : 2+l])
		b = b[2+l:]
		d := binary.LittleEndian.Uint32(b)
		if uint64(d) > uint64(len(b)-4) {
			return nil, false
		}
		m[name] = b[4 : 4+d : 4+d]
		b = b[4+d:]
	}
	return m, len(b) == 0
}
