package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/picosim/picosim/internal/closest"
)

// The command line's conventions, shared by every command: flags before,
// between or after the arguments (`picosim run FILE --seed 7`), a misspelt
// flag or command answered with the closest real one, durations that say
// they want a unit, --version, and completion for the shells.

// commands are picosim's commands, for suggestions and completion.
var commands = []string{"run", "validate", "schema", "cluster", "sweep", "calibrate", "up", "ctl", "tls-pair", "hostboard", "lab", "inventory", "bench", "help", "version", "completion"}

// flagsFirst moves the flags of args before its arguments, so that the
// flag package, which stops at the first argument, reads them all; "--"
// still ends the flags.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBool(f) && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	if len(rest) == 0 {
		return flags
	}
	return append(append(flags, "--"), rest...)
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

var (
	unknownFlag = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	badValue    = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for flag -+([^:]*): (.*)$`)
)

// explain turns a parse error of the flag package into one line that says
// what to do.
func explain(fs *flag.FlagSet, err error) string {
	cmd := "picosim " + fs.Name()
	msg := err.Error()
	if m := unknownFlag.FindStringSubmatch(msg); m != nil {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s := closest.Word(m[1], names); s != "" {
			return fmt.Sprintf("%s: unknown flag --%s; did you mean --%s? ('picosim help %s' lists them)", cmd, m[1], s, fs.Name())
		}
		return fmt.Sprintf("%s: unknown flag --%s ('picosim help %s' lists them)", cmd, m[1], fs.Name())
	}
	if m := badValue.FindStringSubmatch(msg); m != nil {
		why := m[3] // the flag's own reason, unless it is the parser's bare "parse error"
		switch f := fs.Lookup(m[2]); {
		case f != nil && fmt.Sprintf("%T", f.Value) == "*flag.durationValue":
			why = "a duration wants a unit, as in 10s, 500ms, 2m or 1h30m"
		case f != nil && (why == "parse error" || why == "value out of range"):
			why = fmt.Sprintf("%s: %s (default %s)", why, f.Usage, emptyQuoted(f.DefValue))
		}
		return fmt.Sprintf("%s: --%s %q: %s", cmd, m[2], m[1], why)
	}
	return fmt.Sprintf("%s: %s ('picosim help %s')", cmd, msg, fs.Name())
}

func emptyQuoted(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// version says which build this is: the module's version, or the commit it
// was built from, as the Go toolchain recorded them.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "picosim (no build information)"
	}
	v := info.Main.Version
	var rev, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	out := "picosim " + v
	if rev != "" {
		out += fmt.Sprintf(" (commit %.12s, %s%s)", rev, at, dirty)
	}
	return out + ", " + info.GoVersion
}

const completionHelp = `Usage: picosim completion bash|zsh|fish

Prints a script that completes picosim's commands, flags and files in the
shell. Load it now, or for good:

  source <(picosim completion bash)             # bash, now
  picosim completion bash > /etc/bash_completion.d/picosim
  picosim completion zsh > "${fpath[1]}/_picosim"
  picosim completion fish > ~/.config/fish/completions/picosim.fish
`

// completionCmd prints a shell's completion script. The scripts ask
// picosim itself (the hidden __complete command) what fits, so that they
// never fall out of step with the flags.
func completionCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, completionHelp)
		if len(args) == 1 {
			return 0
		}
		return 2
	}
	switch args[0] {
	case "bash":
		fmt.Fprint(stdout, `# picosim completion for bash
_picosim() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local words
	words=$(picosim __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
	if [ ${#COMPREPLY[@]} -eq 0 ]; then COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -o filenames -F _picosim picosim
`)
	case "zsh":
		fmt.Fprint(stdout, `#compdef picosim
# picosim completion for zsh
_picosim() {
	local -a words_
	words_=(${(f)"$(picosim __complete ${words[2,CURRENT]} 2>/dev/null)"})
	if (( ${#words_} )); then compadd -a words_; else _files; fi
}
compdef _picosim picosim
`)
	case "fish":
		fmt.Fprint(stdout, `# picosim completion for fish
complete -c picosim -f -a '(picosim __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
complete -c picosim -F
`)
	default:
		fmt.Fprintf(stderr, "picosim completion: no completion for %q: bash, zsh or fish\n", args[0])
		return 2
	}
	return 0
}

// completeCmd prints what may follow words, one a line: the commands after
// picosim, a command's flags after it (read from its own --help, so that
// they are always its real ones); nothing where a file goes (the shell
// completes files then).
func completeCmd(words []string, stdout io.Writer) int {
	cur := ""
	if len(words) > 0 {
		cur, words = words[len(words)-1], words[:len(words)-1]
	}
	if len(words) == 0 {
		for _, c := range commands {
			if strings.HasPrefix(c, cur) {
				fmt.Fprintln(stdout, c)
			}
		}
		return 0
	}
	if words[0] == "help" && len(words) == 1 {
		return completeCmd([]string{cur}, stdout)
	}
	if !strings.HasPrefix(cur, "-") {
		return 0
	}
	var help bytes.Buffer
	run([]string{words[0], "--help"}, io.Discard, &help)
	cur = "--" + strings.TrimLeft(cur, "-")
	seen := map[string]bool{}
	var out []string
	for _, m := range helpFlag.FindAllStringSubmatch(help.String(), -1) {
		if f := "--" + m[1]; !seen[f] && strings.HasPrefix(f, cur) {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	fmt.Fprintln(stdout, strings.Join(out, "\n"))
	return 0
}

// helpFlag finds a flag in the flag package's PrintDefaults.
var helpFlag = regexp.MustCompile(`(?m)^  -{1,2}([a-z][a-z0-9-]*)`)

// unknownCommand says so, with the command that was probably meant.
func unknownCommand(name string, stderr io.Writer) int {
	if s := closest.Word(name, commands); s != "" {
		fmt.Fprintf(stderr, "picosim: unknown command %q; did you mean %q?\n\n%s", name, s, usage)
	} else {
		fmt.Fprintf(stderr, "picosim: unknown command %q\n\n%s", name, usage)
	}
	return 2
}

// isTerminal reports whether w is a terminal, where a line may be
// rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
