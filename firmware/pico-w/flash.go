//go:build tinygo && rp2040

package main

import (
	"encoding/binary"
	"errors"
	"machine"

	"github.com/picosim/picosim/firmware"
)

// store is the firmware's Flash on a Pico W: every file in RAM (a
// firmware.MemFlash), and all of them as one record in the flash after the
// program (machine.Flash), rewritten whenever a file changes. Files are
// small (settings, the image's marker files, the boot counter), and a board
// writes a handful per boot.
//
// Record: "PSF1", count u16, then per file name length u16, name, data
// length u32, data; little-endian.
type store struct {
	firmware.MemFlash
}

const storeMagic = "PSF1"

func loadStore() *store {
	s := &store{MemFlash: firmware.MemFlash{}}
	head := make([]byte, 6)
	if _, err := machine.Flash.ReadAt(head, 0); err != nil || string(head[:4]) != storeMagic {
		return s // blank flash: the firmware formats it
	}
	off := int64(6)
	for n := binary.LittleEndian.Uint16(head[4:]); n > 0; n-- {
		var l [4]byte
		machine.Flash.ReadAt(l[:2], off)
		name := make([]byte, binary.LittleEndian.Uint16(l[:2]))
		machine.Flash.ReadAt(name, off+2)
		off += 2 + int64(len(name))
		machine.Flash.ReadAt(l[:], off)
		data := make([]byte, binary.LittleEndian.Uint32(l[:]))
		machine.Flash.ReadAt(data, off+4)
		off += 4 + int64(len(data))
		s.MemFlash[string(name)] = data
	}
	return s
}

func (s *store) WriteFile(name string, data []byte) error {
	s.MemFlash.WriteFile(name, data)
	return s.save()
}

func (s *store) Remove(name string) error {
	if _, ok := s.MemFlash[name]; !ok {
		return nil
	}
	s.MemFlash.Remove(name)
	return s.save()
}

func (s *store) save() error {
	names := s.Names()
	rec := append([]byte(storeMagic), 0, 0)
	binary.LittleEndian.PutUint16(rec[4:], uint16(len(names)))
	for _, n := range names {
		rec = binary.LittleEndian.AppendUint16(rec, uint16(len(n)))
		rec = append(rec, n...)
		rec = binary.LittleEndian.AppendUint32(rec, uint32(len(s.MemFlash[n])))
		rec = append(rec, s.MemFlash[n]...)
	}
	if int64(len(rec)) > machine.Flash.Size() {
		return errors.New("flash: files do not fit")
	}
	blocks := (int64(len(rec)) + machine.Flash.EraseBlockSize() - 1) / machine.Flash.EraseBlockSize()
	if err := machine.Flash.EraseBlocks(0, blocks); err != nil {
		return err
	}
	_, err := machine.Flash.WriteAt(rec, 0)
	return err
}
