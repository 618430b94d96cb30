package firmware

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"io"
)

// MaxInflated bounds what one compressed file of an update may grow to: no
// more than the flash store holds, so that a small request cannot take a
// board's whole heap.
const MaxInflated = StoreSlot

// ErrTooLarge is a compressed file that inflates past MaxInflated.
var ErrTooLarge = errors.New("update: a file inflates past 64 KiB")

// Inflate decompresses a file of a compressed update (piconetcontrol's
// client compresses by default): zlib, or raw deflate.
func Inflate(b []byte) ([]byte, error) {
	if r, err := zlib.NewReader(bytes.NewReader(b)); err == nil {
		if out, err := readAtMost(r); err == nil || err == ErrTooLarge {
			return out, err
		}
	}
	return readAtMost(flate.NewReader(bytes.NewReader(b)))
}

func readAtMost(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, MaxInflated+1))
	if err != nil {
		return nil, err
	}
	if len(out) > MaxInflated {
		return nil, ErrTooLarge
	}
	return out, nil
}
