package tlscert

import (
	"crypto/tls"
	"testing"
)

// A generated pair loads, serves TLS, and a mismatched key is refused.
func TestAGeneratedPairServesTLS(t *testing.T) {
	cert, key, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf.Subject.CommonName != "PicoW" {
		t.Fatalf("CN %q", c.Leaf.Subject.CommonName)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			conn.Write([]byte("ok"))
			conn.Close()
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}) // as the client: no verification
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if _, err := conn.Read(b); err != nil || string(b) != "ok" {
		t.Fatalf("%q %v", b, err)
	}
	conn.Close()
	_, other, _ := Generate()
	if _, err := Load(cert, other); err == nil {
		t.Fatal("a key of another pair was accepted")
	}
	if _, err := Load([]byte("junk"), key); err == nil {
		t.Fatal("junk accepted as a certificate")
	}
}
