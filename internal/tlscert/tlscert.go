// Package tlscert makes and reads the TLS identity of a piconetcontrol
// server as its users make it: a self-signed P-256 certificate and its key,
// both DER (the client's gen_ssl.sh: CN=PicoW, 1000 days; the real server
// reads config/ec_cert.der and config/ec_key.der). The client does not
// verify the certificate; the pair only has to be one a TLS stack accepts.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// The names the real server gives the pair in its flash.
const (
	CertFile = "config/ec_cert.der"
	KeyFile  = "config/ec_key.der"
)

// Generate makes a pair as gen_ssl.sh does: the certificate (X.509, DER)
// and the key (SEC 1 EC private key, DER, as `openssl ec -outform DER`).
func Generate() (certDER, keyDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "PicoW"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(1000 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	certDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err = x509.MarshalECPrivateKey(key)
	return certDER, keyDER, err
}

// Load reads a pair in those forms (the key may also be PKCS #8).
func Load(certDER, keyDER []byte) (tls.Certificate, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlscert: the certificate: %w", err)
	}
	var key any
	if k, err := x509.ParseECPrivateKey(keyDER); err == nil {
		key = k
	} else if k, err2 := x509.ParsePKCS8PrivateKey(keyDER); err2 == nil {
		key = k
	} else {
		return tls.Certificate{}, fmt.Errorf("tlscert: the key: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	priv, ok2 := key.(*ecdsa.PrivateKey)
	if !ok || !ok2 || !pub.Equal(&priv.PublicKey) {
		return tls.Certificate{}, errors.New("tlscert: the key is not the certificate's (P-256 ECDSA both)")
	}
	return tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: key, Leaf: cert}, nil
}

// ServerConfig is a TLS server configuration for the pair, accepting what
// the client's default context negotiates (TLS 1.2 and 1.3).
func ServerConfig(c tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
}
