// Package mac is the message authentication code of keyed discovery and
// keyed control: BLAKE2s-128 in its keyed mode (RFC 7693).
//
// Why BLAKE2s: it works on 32-bit words, which a Cortex-M0+ handles natively
// (SipHash and BLAKE2b need 64-bit arithmetic the RP2040 emulates); a keyed
// hash needs no inner and outer pass as HMAC does, so a short frame costs one
// or a few compressions; and it is in Python's hashlib
// (hashlib.blake2s(msg, key=key, digest_size=16)) and Go's
// golang.org/x/crypto/blake2s, so a controller written in either needs no
// code of ours. It is written here, without allocation and without
// dependencies, so that node/ stays buildable by TinyGo on its own; the tests
// check it against x/crypto.
package mac

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/bits"
)

// Size is the length of a tag, in bytes.
const Size = 16

// MinKey and MaxKey bound a key's length, in bytes.
const (
	MinKey = 16
	MaxKey = 32
)

// ErrKeySize is what New and ParseKey return for a key of the wrong length;
// ErrKeyHex what ParseKey returns for text that is not hex digits.
var (
	ErrKeySize = errors.New("key must be 16 to 32 bytes")
	ErrKeyHex  = errors.New("key must be hex digits")
)

// ParseKey reads a key written as 32 to 64 hex digits, as settings files,
// scenarios and the command line give it.
func ParseKey(s string) ([]byte, error) {
	k, err := hex.DecodeString(s)
	switch {
	case err != nil:
		return nil, ErrKeyHex
	case len(k) < MinKey || len(k) > MaxKey:
		return nil, ErrKeySize
	}
	return k, nil
}

var iv = [8]uint32{
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
}

var sigma = [10][16]uint8{
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	{14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
	{11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
	{7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
	{9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
	{2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
	{12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
	{13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
	{6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
	{10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
}

// MAC computes tags under one key. Reset, Write, then Sum; a MAC is reused
// for every frame, so tagging allocates nothing.
type MAC struct {
	key  [64]byte  // the key, zero-padded to a block: the first block hashed
	k    [8]uint32 // the state after the key block, when a message follows
	klen int
	h    [8]uint32
	t    uint64 // bytes hashed so far
	buf  [64]byte
	n    int // bytes in buf
}

// New returns a MAC keyed with key (16 to 32 bytes).
func New(key []byte) (*MAC, error) {
	if len(key) < MinKey || len(key) > MaxKey {
		return nil, ErrKeySize
	}
	m := &MAC{klen: len(key)}
	copy(m.key[:], key)
	m.Reset()
	// Every message but the empty one starts by compressing the key block;
	// do it once here, not per tag.
	m.k = m.h
	compress(&m.k, &m.key, 64, false)
	return m, nil
}

// Reset starts a new tag.
func (m *MAC) Reset() {
	m.h = iv
	m.h[0] ^= 0x01010000 ^ uint32(m.klen)<<8 ^ Size
	m.t = 0
	m.buf = m.key
	m.n = 64
}

// Write adds p to the message.
func (m *MAC) Write(p []byte) {
	for len(p) > 0 {
		if m.n == 64 { // a full block waits: more follows, so it is not the last
			m.flush()
		}
		c := copy(m.buf[m.n:], p)
		m.n += c
		p = p[c:]
	}
}

// WriteString adds s to the message, without copying it to a []byte first.
// It repeats Write's loop: a generic function over both made the slices
// callers pass escape to the heap, an allocation per frame.
func (m *MAC) WriteString(s string) {
	for len(s) > 0 {
		if m.n == 64 {
			m.flush()
		}
		c := copy(m.buf[m.n:], s)
		m.n += c
		s = s[c:]
	}
}

func (m *MAC) flush() {
	m.t += 64
	if m.t == 64 {
		m.h = m.k // the key block, compressed in New
	} else {
		compress(&m.h, &m.buf, m.t, false)
	}
	m.n = 0
}

// Sum appends the tag of the message written since Reset to b.
func (m *MAC) Sum(b []byte) []byte {
	h := m.h
	last := m.buf
	for i := m.n; i < 64; i++ {
		last[i] = 0
	}
	compress(&h, &last, m.t+uint64(m.n), true)
	var out [32]byte
	for i, w := range h {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return append(b, out[:Size]...)
}

// Equal compares two tags in constant time.
func Equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := range a {
		d |= a[i] ^ b[i]
	}
	return d == 0
}

func compress(h *[8]uint32, block *[64]byte, t uint64, final bool) {
	var m [16]uint32
	for i := range m {
		m[i] = binary.LittleEndian.Uint32(block[4*i:])
	}
	v0, v1, v2, v3, v4, v5, v6, v7 := h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
	v8, v9, v10, v11 := iv[0], iv[1], iv[2], iv[3]
	v12, v13, v14, v15 := iv[4]^uint32(t), iv[5]^uint32(t>>32), iv[6], iv[7]
	if final {
		v14 = ^v14
	}
	for r := range sigma {
		s := &sigma[r]
		v0, v4, v8, v12 = g(v0, v4, v8, v12, m[s[0]&15], m[s[1]&15])
		v1, v5, v9, v13 = g(v1, v5, v9, v13, m[s[2]&15], m[s[3]&15])
		v2, v6, v10, v14 = g(v2, v6, v10, v14, m[s[4]&15], m[s[5]&15])
		v3, v7, v11, v15 = g(v3, v7, v11, v15, m[s[6]&15], m[s[7]&15])
		v0, v5, v10, v15 = g(v0, v5, v10, v15, m[s[8]&15], m[s[9]&15])
		v1, v6, v11, v12 = g(v1, v6, v11, v12, m[s[10]&15], m[s[11]&15])
		v2, v7, v8, v13 = g(v2, v7, v8, v13, m[s[12]&15], m[s[13]&15])
		v3, v4, v9, v14 = g(v3, v4, v9, v14, m[s[14]&15], m[s[15]&15])
	}
	h[0] ^= v0 ^ v8
	h[1] ^= v1 ^ v9
	h[2] ^= v2 ^ v10
	h[3] ^= v3 ^ v11
	h[4] ^= v4 ^ v12
	h[5] ^= v5 ^ v13
	h[6] ^= v6 ^ v14
	h[7] ^= v7 ^ v15
}

// g is BLAKE2s's mixing function; the & 15 above lets the compiler drop
// the bounds checks on m.
func g(a, b, c, d, x, y uint32) (uint32, uint32, uint32, uint32) {
	a += b + x
	d = bits.RotateLeft32(d^a, -16)
	c += d
	b = bits.RotateLeft32(b^c, -12)
	a += b + y
	d = bits.RotateLeft32(d^a, -8)
	c += d
	b = bits.RotateLeft32(b^c, -7)
	return a, b, c, d
}
