package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/picosim/picosim/internal/tlscert"
)

const tlsPairHelp = `Usage: picosim tls-pair [--out DIR] [--force]

Makes a TLS identity for a piconetcontrol server as the client's gen_ssl.sh
does (a self-signed P-256 certificate, CN=PicoW, 1000 days) and writes it
as the real server keeps it: DIR/config/ec_cert.der and DIR/config/ec_key.der
(DER). Copy config/ into a board's flash folder (an emulated board serves
TLS with it; picosim hostboard --flash DIR), or give the two files to
'picosim up --tls --tls-cert F --tls-key F'. Existing files are kept unless
--force.

Examples:
  picosim tls-pair --out /tmp/pico1        # then: picosim hostboard --flash /tmp/pico1
  picosim tls-pair --out . && picosim up --tls --tls-cert config/ec_cert.der --tls-key config/ec_key.der

Flags:
`

func tlsPairCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tls-pair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tlsPairHelp); fs.PrintDefaults() }
	out := fs.String("out", ".", "the folder config/ goes in")
	force := fs.Bool("force", false, "replace existing files")
	rest, code, ok := parseInterleaved(fs, args, stderr)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "picosim tls-pair: unexpected %q (picosim help tls-pair)\n", rest[0])
		return 2
	}
	certPath, keyPath := filepath.Join(*out, tlscert.CertFile), filepath.Join(*out, tlscert.KeyFile)
	if !*force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Stat(p); err == nil {
				fmt.Fprintf(stderr, "picosim tls-pair: %s exists (--force replaces it)\n", p)
				return 1
			}
		}
	}
	certDER, keyDER, err := tlscert.Generate()
	if err == nil {
		err = os.MkdirAll(filepath.Dir(certPath), 0o755)
	}
	if err == nil {
		err = os.WriteFile(certPath, certDER, 0o644)
	}
	if err == nil {
		err = os.WriteFile(keyPath, keyDER, 0o600)
	}
	if err != nil {
		fmt.Fprintf(stderr, "picosim tls-pair: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n%s\n", certPath, keyPath)
	return 0
}
