// Command picosim tests Raspberry Pi Pico W clusters: in simulation, on
// emulated boards (the firmware as Linux processes in network namespaces),
// and on real boards.
//
//	picosim run scenarios/
//	sudo picosim run --target emulated scenarios/
//	picosim run --target hw --inventory lab.yaml scenarios/
//	picosim cluster --nodes 5 --kill-master-at 10s --duration 40s --seed 7
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/picosim/picosim/firmware/host"
	"github.com/picosim/picosim/node/mac"
	"github.com/picosim/picosim/sim/scenario"
)

const usage = `picosim tests Raspberry Pi Pico W clusters: simulated, emulated, and on real boards.

Usage:
  picosim run PATH...       run YAML scenarios (files or folders) and print a verdict table
  picosim validate PATH...  check scenario files without running them
  picosim schema            print the JSON Schema of scenario files
  picosim cluster [flags]   boot virtual boards, kill the master, check the failover
  picosim sweep [flags]     the same failover over many seeds: a table of outcomes
  picosim calibrate FILE    estimate per-pair links (loss, bursts, latency) from a capture
  picosim up [flags]        keep a cluster running; forward its control ports to the host
  picosim ctl ADDR -c ...   send control commands to a board (real or virtual)
  picosim tls-pair          make a board's TLS certificate and key, as gen_ssl.sh does
  picosim hostboard [flags] run the firmware built for Linux: one emulated board
  picosim lab [flags]       keep emulated boards running as a lab for the hw target
  picosim inventory FILE    check a lab inventory; run its boards' flash and power commands
  picosim bench [flags]     measure simulation speed and scale, print a table
  picosim completion SHELL  print a completion script for bash, zsh or fish
  picosim version           print the version (also --version)
  picosim help [command]    show help

Flags may come before or after a command's arguments. Run 'picosim help
cluster' for the flags of a command.
`

func main() {
	stop := profile(os.Stderr)
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// profile writes a CPU profile to $PICOSIM_CPUPROFILE and a heap profile to
// $PICOSIM_MEMPROFILE, when set, for whoever chases where a run's time or
// memory goes: PICOSIM_CPUPROFILE=cpu.out picosim cluster --nodes 50 ...;
// go tool pprof -top cpu.out.
func profile(stderr io.Writer) (stop func()) {
	var stops []func()
	if path := os.Getenv("PICOSIM_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "picosim: PICOSIM_CPUPROFILE: %v\n", err)
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if path := os.Getenv("PICOSIM_MEMPROFILE"); path != "" {
		stops = append(stops, func() {
			f, err := os.Create(path)
			if err == nil {
				err = pprof.WriteHeapProfile(f)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(stderr, "picosim: PICOSIM_MEMPROFILE: %v\n", err)
			}
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// untilInterrupted is a context that ends at Ctrl-C or SIGTERM, or after
// d when d is not zero: how long up and lab keep running.
func untilInterrupted(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if d <= 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, func() { cancel(); stop() }
}

// run is main without the process: it returns the exit code, 0 on success,
// 1 when a check failed, 2 on bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "cluster":
		return clusterCmd(args[1:], stdout, stderr)
	case "sweep":
		return sweepCmd(args[1:], stdout, stderr)
	case "calibrate":
		return calibrateCmd(args[1:], stdout, stderr)
	case "bench":
		return benchCmd(args[1:], stdout, stderr)
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "schema":
		if len(args) > 1 {
			if args[1] == "-h" || args[1] == "--help" || args[1] == "-help" {
				fmt.Fprint(stderr, schemaHelp)
				return 0
			}
			fmt.Fprintf(stderr, "picosim schema: unexpected argument %q\n\n%s", args[1], schemaHelp)
			return 2
		}
		b, err := scenario.Schema()
		if err != nil {
			fmt.Fprintf(stderr, "picosim schema: %v\n", err)
			return 1
		}
		stdout.Write(b)
		return 0
	case "up":
		return upCmd(args[1:], stdout, stderr)
	case "ctl":
		return ctlCmd(args[1:], stdout, stderr)
	case "tls-pair":
		return tlsPairCmd(args[1:], stdout, stderr)
	case "hostboard":
		return host.Main(args[1:], stdout, stderr)
	case "lab":
		return labCmd(args[1:], stdout, stderr)
	case "inventory":
		return inventoryCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		if len(args) > 1 && !strings.HasPrefix(args[1], "-") && args[1] != "help" {
			if !slices.Contains(commands, args[1]) {
				return unknownCommand(args[1], stderr)
			}
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version())
		return 0
	case "completion":
		return completionCmd(args[1:], stdout, stderr)
	case "__complete":
		return completeCmd(args[1:], stdout)
	}
	return unknownCommand(args[0], stderr)
}

const schemaHelp = `Usage: picosim schema

Prints the JSON Schema of scenario files on standard output, for an editor
to check and complete them as they are written (VS Code's YAML extension:
"yaml.schemas": {"scenarios/schema.json": "scenarios/*.yaml"}).

Example:
  picosim schema > scenarios/schema.json
`

// parseFlags parses a subcommand's flags. When it reports !ok the command
// returns code: 0 after --help (the usage is printed), 2 for a bad flag or,
// for a command that takes no arguments, a stray one (a value whose flag
// lost its dashes, say), so that nothing a user typed is silently ignored.
func parseFlags(fs *flag.FlagSet, args []string, takesArgs bool, stderr io.Writer) (code int, ok bool) {
	// The flag package prints its own message and the whole usage on a
	// bad flag: 45 lines for a typo. One line that says what to do instead.
	out, help := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(flagsFirst(fs, args))
	fs.SetOutput(out)
	fs.Usage = help
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help()
			return 0, false
		}
		fmt.Fprintln(stderr, explain(fs, err))
		return 2, false
	}
	if !takesArgs && fs.NArg() > 0 {
		fmt.Fprintf(stderr, "picosim %s: unexpected argument %q (flags start with --)\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// keyFlag is --key: the shared key of keyed discovery and control, 16 to 32
// bytes written as 32 to 64 hex digits.
type keyFlag []byte

func (k *keyFlag) String() string { return hex.EncodeToString(*k) }

func (k *keyFlag) Set(s string) error {
	b, err := mac.ParseKey(s)
	if err != nil {
		return fmt.Errorf("want 32 to 64 hex digits (a key of 16 to 32 bytes), such as %x", "picosim-demo-key")
	}
	*k = b
	return nil
}

const keyUsage = "shared key of keyed discovery and control, 32 to 64 hex digits (default: none, the seeds' open protocol)"
