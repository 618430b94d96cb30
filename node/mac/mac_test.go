package mac

import (
	"encoding/hex"
	"strconv"
	"testing"
)

// vectors are BLAKE2s-128 tags computed by Python's hashlib (an independent
// implementation): key bytes 0..klen-1, message byte i = (7i+3) mod 256.
var vectors = []struct {
	klen, n int
	tag     string
}{
	{16, 0, "af4e5d3bb230e9ff9096ca6f7c501f76"},
	{16, 1, "8b83f90e655c3cfb046f389b2fdffc7a"},
	{16, 3, "5b38ce1b95f8743fe27811d1cf0e3c24"},
	{16, 55, "8f6eb81f72297e284f4060f9835cfaed"},
	{16, 63, "14f66b30bee82e2853c2f9be3d95627e"},
	{16, 64, "521ceb8c84ace70ace5c25a7c66daf62"},
	{16, 65, "8332bcb632c808ae51dccfe1d2102e49"},
	{16, 127, "e42bbc0765d00b7701e325cd8d96d68c"},
	{16, 128, "735f0f17522146d6c16764c7dfed1e4e"},
	{16, 129, "3432f852a7e374ed24bcb7f2e026b3d5"},
	{16, 300, "659caa86d1b27acbaf8354948711f7b1"},
	{32, 0, "9536f9b267655743dee97b8a670f9f53"},
	{32, 1, "4559b111ae96763f9a75fc80c088718a"},
	{32, 3, "3a1c561fc35d607a752c8b807fc5826e"},
	{32, 55, "e339c6d3dd26c45089e7eb9df3c287c1"},
	{32, 63, "1052ac94e3acb1a81c87d50cb3cebd68"},
	{32, 64, "27337ab7d92116d773ea23fded157e28"},
	{32, 65, "0b9ae39a44ce901047c9d568694a26d0"},
	{32, 127, "ac358e1e340e0d361f4a6281669e776c"},
	{32, 128, "1823d609afa81d714dab2d1412152ff4"},
	{32, 129, "cc6a2619c2328be9b586db8900ec43d2"},
	{32, 300, "8bb2353884c5623bc2db3b3d3c98eb4e"},
}

func TestTagsMatchPythonsHashlib(t *testing.T) {
	for _, v := range vectors {
		key := make([]byte, v.klen)
		for i := range key {
			key[i] = byte(i)
		}
		msg := make([]byte, v.n)
		for i := range msg {
			msg[i] = byte((i*7 + 3) % 256)
		}
		m, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		// Whole, then byte by byte, then again after Reset: the split of
		// writes must not matter, nor a MAC's reuse.
		m.Write(msg)
		if got := hex.EncodeToString(m.Sum(nil)); got != v.tag {
			t.Errorf("key %d bytes, message %d bytes: tag %s, want %s", v.klen, v.n, got, v.tag)
		}
		m.Reset()
		for i := range msg {
			m.Write(msg[i : i+1])
		}
		if got := hex.EncodeToString(m.Sum(nil)); got != v.tag {
			t.Errorf("byte by byte, key %d, message %d: tag %s, want %s", v.klen, v.n, got, v.tag)
		}
		m.Reset()
		m.WriteString(string(msg))
		if got := hex.EncodeToString(m.Sum(nil)); got != v.tag {
			t.Errorf("WriteString, key %d, message %d: tag %s, want %s", v.klen, v.n, got, v.tag)
		}
	}
}

func TestKeyLengthIsChecked(t *testing.T) {
	for _, n := range []int{0, 15, 33} {
		if _, err := New(make([]byte, n)); err != ErrKeySize {
			t.Errorf("key of %d bytes: err %v, want ErrKeySize", n, err)
		}
	}
}

func TestEqual(t *testing.T) {
	a := []byte("0123456789abcdef")
	b := append([]byte(nil), a...)
	if !Equal(a, b) {
		t.Error("equal tags compare unequal")
	}
	b[15] ^= 1
	if Equal(a, b) || Equal(a, a[:15]) {
		t.Error("different tags compare equal")
	}
}

// BenchmarkTag is the authenticator's cost per discovery frame: a heartbeat
// with 16 witnesses is about 260 bytes with its trailer.
func BenchmarkTag(b *testing.B) {
	for _, n := range []int{64, 260} {
		b.Run(strconv.Itoa(n)+"B", func(b *testing.B) {
			m, _ := New(make([]byte, 32))
			msg := make([]byte, n)
			out := make([]byte, 0, Size)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				m.Reset()
				m.Write(msg)
				out = m.Sum(out[:0])
			}
		})
	}
}
