package control

import (
	"bytes"
	"compress/zlib"
	"io"
)

// zlibInflate is what the simulator's boards pass as Config.Inflate.
func zlibInflate(b []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
