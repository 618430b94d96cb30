package control

import (
	"bytes"
	"compress/zlib"
	"io"
)

// zlibInflate stands in for a board's Config.Inflate (the firmware's is
// firmware/host.Inflate, zlib or raw deflate), which this package leaves
// to its callers.
func zlibInflate(b []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
