package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/picosim/picosim/sim/ctl"
)

const ctlHelp = `Usage: picosim ctl ADDR [--json] [--tls] [--timeout 3s] [--retries 3] [--key HEX] -c KEY=VALUE... [-c KEY=VALUE...]

Sends piconetcontrol commands to a board (real, emulated, or a virtual one
behind 'picosim up --forward') over one connection, in order, and prints each
reply. Values that read as numbers are sent as numbers. Exit status 1 when a
reply is an error or the board cannot be reached, 2 on bad usage.

Examples:
  picosim ctl 127.0.0.1:12345 -c action=setup_pin pin=2 mode=output value=0 \
      -c action=read_pin pin=2 -c action=write_pin pin=2 value=1 timeout=5 -c action=read_pin pin=2
  picosim ctl 192.168.1.40:12345 --json -c action=get_info
  picosim ctl 127.0.0.1:12345 --key 7069636f73696d2d64656d6f2d6b6579 -c action=reset
  picosim ctl 127.0.0.1:12345 --tls -c action=ping     # a board serving TLS (picosim up --tls)

--key signs every command for a board that holds that key (keyed control:
get_nonce once, then each command signed with the key, the nonce and a
sequence number; README, "Hostile networks"). --tls speaks TLS, as
piconetcontrol's client does by default, without verifying the board's
self-signed certificate.
`

func ctlCmd(args []string, stdout, stderr io.Writer) int {
	var (
		addr     string
		cmds     [][]string
		asJSON   bool
		opt      ctl.Options
		inCmd    bool
		usageErr = func(format string, a ...any) int {
			fmt.Fprintf(stderr, "picosim ctl: "+format+"\n\n%s", append(a, ctlHelp)...)
			return 2
		}
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func() (string, bool) {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "-") {
				return v, true
			}
			if i+1 < len(args) {
				i++
				return args[i], true
			}
			return "", false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprint(stderr, ctlHelp)
			return 0
		case a == "-c" || a == "--command":
			cmds = append(cmds, nil)
			inCmd = true
		case a == "--json" || a == "-json":
			asJSON = true
		case a == "--tls" || a == "-tls":
			opt.TLS = true
		case strings.HasPrefix(a, "-") && name == "timeout":
			v, ok := value()
			d, err := time.ParseDuration(v)
			if !ok || err != nil || d <= 0 {
				return usageErr("--timeout %q: want a duration such as 3s", v)
			}
			opt.Timeout = d
		case strings.HasPrefix(a, "-") && name == "key":
			v, ok := value()
			var k keyFlag
			if err := k.Set(v); !ok || err != nil {
				return usageErr("--key: %v", err)
			}
			opt.Key = k
		case strings.HasPrefix(a, "-") && name == "retries":
			v, ok := value()
			n, err := strconv.Atoi(v)
			if !ok || err != nil || n < 0 {
				return usageErr("--retries %q: want a count, 0 or more", v)
			}
			opt.Retries = n
			if n == 0 {
				opt.Retries = -1
			}
		case strings.HasPrefix(a, "-"):
			return usageErr("unknown flag %s", a)
		case inCmd:
			cmds[len(cmds)-1] = append(cmds[len(cmds)-1], a)
		case addr == "":
			addr = a
		default:
			return usageErr("unexpected %q: key=value words follow a -c", a)
		}
	}
	if addr == "" {
		return usageErr("no board address (host:port)")
	}
	if len(cmds) == 0 {
		return usageErr("no command: give one or more -c action=... groups")
	}
	var commands []ctl.Command
	for i, words := range cmds {
		c, err := ctl.ParseCommand(words)
		if err != nil {
			return usageErr("command %d: %v", i+1, err)
		}
		commands = append(commands, c)
	}

	ctx := context.Background()
	client, err := ctl.Dial(ctx, addr, opt)
	if err != nil {
		fmt.Fprintf(stderr, "picosim ctl: %v\n", err)
		return 1
	}
	defer client.Close()
	code := 0
	for _, cmd := range commands {
		r, err := client.Do(ctx, cmd)
		if err != nil {
			fmt.Fprintf(stderr, "picosim ctl: %v\n", err)
			return 1
		}
		if r.Err() != nil {
			code = 1
		}
		if asJSON {
			fmt.Fprintln(stdout, r.Raw)
		} else {
			fmt.Fprintln(stdout, describe(cmd, r))
		}
	}
	return code
}

// describe renders a reply for people: the command, then what it added.
func describe(cmd ctl.Command, r ctl.Reply) string {
	var words []string
	for _, f := range cmd {
		words = append(words, fmt.Sprintf("%s=%v", f.Key, f.Value))
	}
	head := strings.Join(words, " ")
	if err := r.Err(); err != nil {
		return head + "  ->  ERROR " + err.Error()
	}
	sent := map[string]bool{"time_received": true}
	for _, f := range cmd {
		sent[f.Key] = true
	}
	var added []string
	for _, k := range []string{"value", "version", "info", "actions"} { // what actions add
		if v, ok := r.Fields[k]; ok && !sent[k] {
			added = append(added, fmt.Sprintf("%s=%v", k, v))
		}
	}
	if len(added) == 0 {
		added = []string{"ok"}
	}
	return head + "  ->  " + strings.Join(added, " ")
}
