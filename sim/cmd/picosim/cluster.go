package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/check"
)

const clusterHelp = `Usage: picosim cluster [flags]

Boots --nodes virtual Pico W boards on a simulated LAN, each with its own
gVisor TCP/IP stack. They discover each other over UDP 37020 and agree on one
MASTER (the lowest address) and WORKER1..n. With --kill-master-at, the master
loses power at that time and the survivors must agree on a new master within
(k+2) heartbeats. Everything runs in simulated time, far faster than real time,
and the same --seed replays the same run event for event.

It prints a timeline and a verdict; with --json, one JSON object per event and
a last line {"summary": {...}}. Exit status: 0 when agreement, liveness and
safety hold, 1 when one does not, 2 on bad flags.

Examples:
  picosim cluster --nodes 5 --kill-master-at 10s --duration 40s --seed 7
  picosim cluster --nodes 3 --loss 0.1 --latency 20ms --jitter 5ms --duration 10m --quiet
  picosim cluster --nodes 5 --kill-master-at 10s --json | tail -1
  picosim cluster --nodes 5 --kill-master-at 10s --loss 0.1 --pcap failover.pcapng
  picosim cluster --nodes 3 --softap --kill-master-at 20s --duration 40s   # everyone falls with the AP

Flags:
`

type clusterFlags struct {
	nodes                    int
	loss                     float64
	latency, jitter          time.Duration
	heartbeat                time.Duration
	missLimit                int
	killAt, duration, spread time.Duration
	seed                     uint64
	json, quiet              bool
	pcap                     string
	radio                    netsim.Radio
	addressing               netsim.Addressing
	softAP                   bool
	key                      keyFlag
}

func clusterCmd(args []string, stdout, stderr io.Writer) int {
	var f clusterFlags
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, clusterHelp)
		fs.PrintDefaults()
	}
	f.register(fs)
	fs.Uint64Var(&f.seed, "seed", 1, "seed of every random choice; the same seed replays the run")
	fs.BoolVar(&f.json, "json", false, "print JSON lines instead of a timeline")
	fs.BoolVar(&f.quiet, "quiet", false, "print only the verdict (or only the summary with --json)")
	fs.StringVar(&f.pcap, "pcap", "", "write every frame to this pcapng file (open it with wireshark -X lua_script:hack/picosim-discovery.lua)")
	if code, ok := parseFlags(fs, args, false, stderr); !ok {
		return code
	}
	if err := f.validate(); err != nil {
		fmt.Fprintf(stderr, "picosim cluster: %v\n", err)
		return 2
	}
	run := f.failover(f.seed)
	if f.pcap != "" {
		file, err := os.Create(f.pcap)
		if err != nil {
			fmt.Fprintf(stderr, "picosim cluster: --pcap: %v\n", err)
			return 2
		}
		run.Capture = file // closed when the run ends
	}
	enc := json.NewEncoder(stdout)
	if !f.quiet {
		run.Cluster.OnEvent = func(e sim.Event) {
			if f.json {
				stdout.Write(append(sim.JSON(e), '\n'))
			} else {
				fmt.Fprintln(stdout, check.Line(e))
			}
		}
	}
	if !f.json {
		fmt.Fprintf(stdout, "picosim cluster: %d boards, seed %d, %s radio, %s, heartbeat %v, k=%d, %v simulated\n",
			f.nodes, f.seed, f.radio, f.linkString(), f.heartbeat, f.missLimit, f.duration)
	}
	s, err := run.Run()
	if err != nil {
		fmt.Fprintf(stderr, "picosim cluster: %v\n", err)
		return 2
	}
	if f.json {
		enc.Encode(map[string]sim.Summary{"summary": s})
	} else {
		printVerdict(stdout, s, f, args)
	}
	if !s.Passed() {
		return 1
	}
	return 0
}

// register adds the flags that describe the cluster and its failover,
// which cluster and sweep share.
func (f *clusterFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.nodes, "nodes", 5, "number of boards")
	fs.Float64Var(&f.loss, "loss", 0, "probability (0..1) that a board misses a frame")
	fs.DurationVar(&f.latency, "latency", 0, "one-way latency of every frame")
	fs.DurationVar(&f.jitter, "jitter", 0, "latency varies uniformly by ±jitter")
	fs.DurationVar(&f.heartbeat, "heartbeat", time.Second, "heartbeat interval of the boards")
	fs.IntVar(&f.missLimit, "miss-limit", 3, "k: a member is gone after k silent heartbeat intervals")
	fs.DurationVar(&f.killAt, "kill-master-at", 0, "power off the master at this simulated time (0: never)")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "simulated length of the run")
	fs.DurationVar(&f.spread, "boot-spread", 0, "boards power on at random times within this window")
	fs.TextVar(&f.radio, "radio", netsim.PicoWRadio, "the boards' radio: picow (join delay, power saving, lost associations) or ideal")
	fs.TextVar(&f.addressing, "addressing", netsim.Sticky, "how the router gives addresses: sticky, new-each-boot (a rebooted board moves)")
	fs.BoolVar(&f.softAP, "softap", false, "pico1 is the network's soft AP at 192.168.4.1, as in the seeds' three-Pico cluster")
	fs.Var(&f.key, "key", keyUsage)
}

// failover is the run the flags describe, with a seed.
func (f *clusterFlags) failover(seed uint64) sim.FailoverRun {
	return sim.FailoverRun{
		Cluster: sim.Config{
			Boards:     f.nodes,
			Seed:       seed,
			Link:       netsim.Link{Loss: f.loss, Latency: f.latency, Jitter: f.jitter},
			Settings:   firmware.Settings{Heartbeat: f.heartbeat, MissLimit: f.missLimit, Key: f.key},
			BootSpread: f.spread,
			NoTimeline: true,
			Profile:    f.radio.Profile(),
			Addressing: f.addressing,
			SoftAP:     softAPBoard(f.softAP),
		},
		KillAt:   f.killAt,
		Duration: f.duration,
	}
}

func (f *clusterFlags) validate() error {
	switch {
	case f.nodes < 1 || f.nodes > 60000:
		return fmt.Errorf("--nodes %d: need 1 to 60000 boards", f.nodes)
	case f.loss < 0 || f.loss > 1 || f.loss != f.loss:
		return fmt.Errorf("--loss %v: need a probability from 0 to 1 (0.1 is 10%%)", f.loss)
	case f.latency < 0:
		return fmt.Errorf("--latency %v: must not be negative", f.latency)
	case f.jitter < 0:
		return fmt.Errorf("--jitter %v: must not be negative", f.jitter)
	case f.heartbeat <= 0:
		return fmt.Errorf("--heartbeat %v: must be positive", f.heartbeat)
	case f.missLimit < 1:
		return fmt.Errorf("--miss-limit %d: must be at least 1", f.missLimit)
	case f.duration <= 0:
		return fmt.Errorf("--duration %v: must be positive", f.duration)
	case f.killAt < 0:
		return fmt.Errorf("--kill-master-at %v: must not be negative", f.killAt)
	case f.killAt >= f.duration:
		return fmt.Errorf("--kill-master-at %v: must come before the end of --duration %v", f.killAt, f.duration)
	case f.spread < 0:
		return fmt.Errorf("--boot-spread %v: must not be negative", f.spread)
	case f.addressing == netsim.NewAtExpiry:
		return fmt.Errorf("--addressing %s: needs a lease time: sticky or new-each-boot", f.addressing)
	case f.softAP && f.nodes > netsim.SoftAPLeases+1:
		return fmt.Errorf("--softap: a soft AP serves %d stations, so at most %d boards", netsim.SoftAPLeases, netsim.SoftAPLeases+1)
	}
	return nil
}

func softAPBoard(on bool) string {
	if on {
		return "pico1"
	}
	return ""
}

func (f *clusterFlags) linkString() string {
	var parts []string
	if f.loss > 0 {
		parts = append(parts, fmt.Sprintf("loss %g", f.loss))
	}
	switch {
	case f.jitter > 0:
		parts = append(parts, fmt.Sprintf("latency %v±%v", f.latency, f.jitter))
	case f.latency > 0:
		parts = append(parts, fmt.Sprintf("latency %v", f.latency))
	}
	if len(parts) == 0 {
		return "perfect links"
	}
	return strings.Join(parts, ", ")
}

func printVerdict(w io.Writer, s sim.Summary, f clusterFlags, args []string) {
	mark := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "FAILED"
	}
	verdict := "PASS"
	if !s.Passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n%s: agreement %s, liveness %s, safety %s\n", verdict, mark(s.Agreement), mark(s.Liveness), mark(s.Safety))
	switch {
	case s.KilledAtS > 0 && s.FailoverS != nil:
		fmt.Fprintf(w, "  master %s killed at %.3fs; survivors agreed on %s after %.3fs (bound %.1fs)\n",
			s.MasterBefore, s.KilledAtS, s.MasterAfter, *s.FailoverS, s.BoundS)
	case s.KilledAtS > 0:
		fmt.Fprintf(w, "  master %s killed at %.3fs; the survivors did not agree on a new master within the bound (%.1fs)\n",
			orNone(s.MasterBefore), s.KilledAtS, s.BoundS)
	default:
		fmt.Fprintf(w, "  master %s\n", orNone(s.MasterAfter))
	}
	// A broadcast goes to every other board: one frame sent, many copies,
	// each of which may be lost (loss, a radio off the air, power).
	fmt.Fprintf(w, "  %.1fs simulated in %.3fs of wall time (%.0fx); %d frames sent, %d copies of them not delivered\n",
		s.SimS, s.WallS, s.Speedup, s.Frames, s.Dropped)
	for _, msg := range s.Failures {
		fmt.Fprintf(w, "  failure at %s\n", msg)
	}
	for _, msg := range s.NotJudged {
		fmt.Fprintf(w, "  %s\n", msg)
	}
	if !s.Passed() {
		replay := strings.Join(args, " ")
		if !strings.Contains(replay, "--seed") {
			replay += fmt.Sprintf(" --seed %d", f.seed)
		}
		fmt.Fprintf(w, "  replay: picosim cluster %s\n", replay)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
