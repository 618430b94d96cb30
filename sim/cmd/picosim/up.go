package main

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/internal/tlscert"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/check"
)

const upHelp = `Usage: picosim up [flags]

Keeps a simulated cluster running in real time and exposes each board's
control port (piconetcontrol, TCP 12345 on the board) on the host: board i
(from 0) on the --forward port + i. Any TCP client on the host can then drive
the virtual boards as if they were real; the LAN's impairments apply on the
way. With --netns, a network namespace joins the LAN through a TAP device:
programs run in it with 'ip netns exec NAME ...' send and receive real frames
with the boards (broadcasts, ARP, ping, UDP, TCP). The timeline prints as it
happens, until Ctrl-C; the namespace is removed on exit.

Examples:
  picosim up --nodes 3 --forward 127.0.0.1:12345
  picosim ctl 127.0.0.1:12346 -c action=setup_pin pin=2 mode=output value=0 -c action=write_pin pin=2 value=1 timeout=5
  printf '{"action": "get_version"}\n' | nc 127.0.0.1 12345
  picosim up --nodes 5 --loss 0.2 --latency 30ms --forward 127.0.0.1:12345 --speed 10
  picosim up --nodes 3 --forward 127.0.0.1:0      # each board on a free port, as the mapping shows
  sudo picosim up --nodes 3 --netns pico-lan     # then: sudo ip netns exec pico-lan python3 hack/desktop_client.py
  picosim up --nodes 3 --key $KEY                 # keyed: picosim ctl --key $KEY 127.0.0.1:12345 -c action=reset
  picosim up --nodes 2 --tls                      # then: python3 run_client.py 127.0.0.1 12345 (TLS, the client's default)

Flags:
`

func upCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, upHelp)
		fs.PrintDefaults()
	}
	nodes := fs.Int("nodes", 3, "number of boards")
	loss := fs.Float64("loss", 0, "probability (0..1) that a board misses a frame")
	latency := fs.Duration("latency", 0, "one-way latency of every frame a board receives")
	jitter := fs.Duration("jitter", 0, "latency varies uniformly by ±jitter")
	heartbeat := fs.Duration("heartbeat", time.Second, "heartbeat interval of the boards")
	forward := fs.String("forward", "127.0.0.1:12345", "host address of board 0's control port; board i is on port + i")
	speed := fs.Float64("speed", 1, "simulated seconds per wall second (a 5 s timeout takes 0.5 s at 10)")
	revert := fs.Bool("revert-on-loss", false, "boards revert held pins when they lose their master or the writing connection")
	seed := fs.Uint64("seed", 1, "seed of every random choice")
	quiet := fs.Bool("quiet", false, "print the port mapping only, not the timeline")
	useTLS := fs.Bool("tls", false, "serve TLS on the forwarded ports, as the real server does and piconetcontrol's client expects by default (a new self-signed P-256 pair unless --tls-cert and --tls-key)")
	tlsCert := fs.String("tls-cert", "", "with --tls: the certificate, DER (the real server's config/ec_cert.der; gen_ssl.sh makes one)")
	tlsKey := fs.String("tls-key", "", "with --tls: its EC key, DER (config/ec_key.der)")
	forDur := fs.Duration("for", 0, "stop after this much wall time (0: run until interrupted)")
	radio := netsim.PicoWRadio
	fs.TextVar(&radio, "radio", netsim.PicoWRadio, "the boards' radio: picow or ideal")
	var key keyFlag
	fs.Var(&key, "key", keyUsage)
	nsName := fs.String("netns", "", "also open a door: a network namespace of this name whose TAP device is one more host on the LAN (needs root)")
	if code, ok := parseFlags(fs, args, false, stderr); !ok {
		return code
	}
	base, err := netip.ParseAddrPort(*forward)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "picosim up: --forward %q: want host:port, e.g. 127.0.0.1:12345\n", *forward)
		return 2
	case *nodes < 1 || *nodes > 1000:
		fmt.Fprintf(stderr, "picosim up: --nodes %d: need 1 to 1000 boards\n", *nodes)
		return 2
	case int(base.Port())+*nodes > 65536:
		fmt.Fprintf(stderr, "picosim up: --forward %s: %d ports from there run past 65535\n", base, *nodes)
		return 2
	case *speed <= 0:
		fmt.Fprintf(stderr, "picosim up: --speed %v: must be positive\n", *speed)
		return 2
	}
	link := netsim.Link{Loss: *loss, Latency: *latency, Jitter: *jitter}
	if err := link.Validate(); err != nil {
		fmt.Fprintf(stderr, "picosim up: %v\n", err)
		return 2
	}
	// The boards' clocks read the wall clock (time_received, a ping's
	// time_responded): simulated time 0 is now, and at --speed 1 it keeps
	// pace with the client's own.
	cfg := sim.Config{Boards: *nodes, Seed: *seed, Link: link, Epoch: time.Now(),
		Settings: firmware.Settings{Heartbeat: *heartbeat, RevertOnLoss: *revert, Key: key}, Profile: radio.Profile(),
		// Real clients talk to up across runs of the same seed: a signed
		// command recorded in one must not be good in the next.
		Entropy: func() uint64 {
			var b [8]byte
			crand.Read(b[:])
			return binary.BigEndian.Uint64(b[:])
		}}
	if !*quiet {
		cfg.OnEvent = func(e sim.Event) { fmt.Fprintln(stdout, check.Line(e)) }
	}
	finished := make(chan struct{})
	defer close(finished) // deferred first, so it runs after every teardown below
	c, err := sim.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "picosim up: %v\n", err)
		return 2
	}
	defer c.Close()
	var tlsConfig *tls.Config
	if *useTLS || *tlsCert != "" || *tlsKey != "" {
		cert, err := upCertificate(*tlsCert, *tlsKey)
		if err != nil {
			fmt.Fprintf(stderr, "picosim up: --tls: %v\n", err)
			return 2
		}
		tlsConfig = tlscert.ServerConfig(cert)
	}
	f, err := c.ForwardTLS(base, tlsConfig)
	if err != nil {
		fmt.Fprintf(stderr, "picosim up: %v\n", err)
		return 1
	}
	defer f.Close()
	f.Notes = func(msg string) { fmt.Fprintf(stderr, "picosim up: %s\n", msg) }
	if *nsName != "" {
		door, err := c.OpenDoor(netsim.DoorConfig{Netns: *nsName,
			Log: func(s string) { fmt.Fprintf(stderr, "picosim up: %s\n", s) }})
		if err != nil {
			fmt.Fprintf(stderr, "picosim up: --netns: %v\n", err)
			return 1
		}
		defer door.Close()
		fmt.Fprintf(stdout, "picosim up: namespace %s is on the LAN at %s; run programs in it with\n  ip netns exec %s python3 hack/desktop_client.py\n",
			*nsName, door.Host().IP(), *nsName)
	}
	ports := "control ports"
	if tlsConfig != nil {
		ports = "control ports (TLS on the host's side)"
	}
	fmt.Fprintf(stdout, "picosim up: %d boards, seed %d, %.3gx real time; %s:\n", *nodes, *seed, *speed, ports)
	for _, m := range f.Mappings {
		fmt.Fprintf(stdout, "  %-8s %-21s <- %s\n", m.Board, m.To, m.From)
	}
	fmt.Fprintln(stdout, "Ctrl-C to stop.")

	ctx, stop := untilInterrupted(*forDur)
	defer stop()
	go watchdog(ctx, finished, stderr)
	c.RunPaced(ctx, *speed)
	fmt.Fprintf(stdout, "picosim up: stopped at %.3fs of simulated time\n", c.Now().Seconds())
	return 0
}

// watchdog makes a signal end the process within a second, whatever the
// teardown waits for; finished closes when upCmd returns.
func watchdog(ctx context.Context, finished <-chan struct{}, stderr io.Writer) {
	select {
	case <-finished:
		return
	case <-ctx.Done():
	}
	select {
	case <-finished:
	case <-time.After(time.Second):
		fmt.Fprintln(stderr, "picosim up: did not stop within 1s of the signal; exiting")
		os.Exit(130)
	}
}

// upCertificate is the TLS identity of up's forwarded ports: the DER pair
// given, or a new one as gen_ssl.sh makes.
func upCertificate(certFile, keyFile string) (tls.Certificate, error) {
	if (certFile == "") != (keyFile == "") {
		return tls.Certificate{}, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	var certDER, keyDER []byte
	var err error
	if certFile == "" {
		certDER, keyDER, err = tlscert.Generate()
	} else if certDER, err = os.ReadFile(certFile); err == nil {
		keyDER, err = os.ReadFile(keyFile)
	}
	if err != nil {
		return tls.Certificate{}, err
	}
	return tlscert.Load(certDER, keyDER)
}
