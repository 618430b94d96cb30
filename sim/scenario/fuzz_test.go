package scenario

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// crafted are inputs that have broken YAML loaders, go-yaml or this one:
// tags, anchors and aliases, deep nesting, huge numbers and durations,
// bytes that are not text, several documents, long values.
func crafted() []string {
	nest := func(open, close string, n int) string {
		return strings.Repeat(open, n) + strings.Repeat(close, n)
	}
	return []string{
		// Tags: go-yaml v1.19.2 crashed on these (nil dereference in decodeSlice).
		"labels: !x\n",
		"steps: !x\n",
		"labels: !!str x\n",
		"labels: !!seq x\n",
		"name: !!str 12\ntopology: {boards: 2}\n",
		"topology: !x {boards: 3}\n",
		"name: x\ntopology: {boards: !!int 2}\n",
		"--- !x\nname: x\n",
		"labels: [!x a]\n",
		"steps:\n  - !x\n",
		"%TAG ! tag:example.com,2000:\n---\nname: !x y\n",
		// Anchors and aliases.
		"name: &n x\ndescription: *n\ntopology: {boards: 2}\n",
		"labels: &a [*a]\n",
		"name: x\ntopology: {boards: &b [*b]}\n", // go-yaml: fatal stack overflow
		"name: x\ntopology: {boards: 2}\nsteps:\n  - control: {board: pico1, commands: [{send: &s {a: *s}}]}\n",
		"name: *x\n",
		"a: &a 1\nb: &a 2\n",
		"name: x\nlink: &l {loss: 10%}\ntopology: {boards: 2, network: *l}\n",
		"name: x\ntopology:\n  boards: 2\n  network: &n {loss: 10%, latency: 20ms}\nsteps:\n  - set_link: {board: pico2, <<: *n}\n",
		"name: x\ntopology:\n  boards: 2\n  network: &n {loss: 10%}\nsteps:\n  - set_link:\n      board: pico1\n      <<: [*n, {jitter: 1ms}]\n",
		"<<: {name: x}\ntopology: {boards: 2}\n",
		"name: &a x\n*a : y\n",
		aliasBomb(3),
		aliasBomb(7),
		// Nesting.
		"labels: " + nest("[", "]", 100) + "\n",
		"labels: " + nest("{a: ", "}", 100) + "\n",
		strings.Repeat("- ", 100) + "x\n",
		deepBlock(100),
		// Numbers, durations and rates at and past their limits.
		"name: x\nseed: 99999999999999999999999999\ntopology: {boards: 2}\n",
		"name: x\nseed: -1\ntopology: {boards: 2}\n",
		"name: x\nseed: 1e400\ntopology: {boards: 2}\n",
		"name: x\nseed: 0x7fffffffffffffff\ntopology: {boards: 1e3}\n",
		"name: x\ntopology: {boards: 9223372036854775807}\n",
		"name: x\ntopology: {boards: 2, miss_limit: -9223372036854775808}\n",
		"name: x\ntimeout: 1e400s\ntopology: {boards: 2}\n",
		"name: x\ntimeout: 9999999999999h\ntopology: {boards: 2}\n",
		"name: x\ntopology: {boards: 2}\nsteps:\n  - wait: 2562047h47m16.854775807s\n  - wait: 1ns\n",
		"name: x\ntopology: {boards: 2, network: {loss: 1e-400, burst_length: 1e308, rate: 9223372036854775807}}\n",
		"name: x\ntopology: {boards: 2, network: {loss: .nan, jitter: -1s}}\n",
		"name: x\ntopology: {boards: 2, network: {loss: 100.0000000001%}}\n",
		"name: x\ntopology: {boards: 2}\nsteps:\n  - expect: {counter: {board: pico1, name: sent, at_least: 18446744073709551616}}\n",
		// Bytes that are not text.
		"name: x\x00y\ntopology: {boards: 2}\n",
		"name: \xff\xfe\ntopology: {boards: 2}\n",
		"\xef\xbb\xbfname: x\ntopology: {boards: 2}\n",
		"\xef\xbb\xbf\xef\xbb\xbfname: x\n",
		"name: x\r\ntopology:\r\n  boards: 2\r\n",
		"name:\tx\ntopology:\n\tboards: 2\n",
		"\r0",
		"name: x\rtopology: {boards: 2}\r",
		"name: \u202eevil\u2066\ntopology: {boards: 2}\n",
		// Documents.
		"",
		"---\n",
		"# only a comment\n",
		"...\n",
		"name: x\n---\nname: y\n",
		"---\n---\nname: x\ntopology: {boards: 2}\n",
		"%YAML 1.2\n---\nname: x\ntopology: {boards: 2}\n...\n",
		"null\n",
		"[1, 2]\n",
		"x\n",
		// Odd keys and values.
		"? name\n: x\ntopology: {boards: 2}\n",
		"? [a, b]\n: x\n",
		"name: x\nname: y\n",
		"{name: x, topology: {boards: 2}}\n",
		"name: |\n  x\n  y\ntopology: {boards: 2}\n",
		"name: >-\n  x\ntopology: {boards: 2}\ntimeout: |\n  10s\n",
		"name: x\ntopology: {boards: 2}\nsteps:\n  - control: {board: pico1, commands: [{send: {action: ping, x: [[[{}]]]}}]}\n",
		"name: x\ntopology: {boards: 2, network: {radio: [picow]}}\n",
		"name: x\ntopology: {boards: [1, 2, 3]}\n",
		"name: x\ntargets: [sim, [emulated]]\ntopology: {boards: 2}\n",
		"name: x\ntopology: {boards: 2, network: {boards: {[a]: {}}}}\n",
		// Long values (not too long: the fuzzer spends its time on them).
		"name: " + strings.Repeat("x", 16000) + "\ntopology: {boards: 2}\n",
		"labels: [" + strings.Repeat("a,", 4000) + "a]\n",
	}
}

// aliasBomb is a "billion laughs": levels anchors, each aliasing the one
// before ten times, in a command that the runner writes out in full.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("name: bomb\ntopology: {boards: 2}\nsteps:\n  - control:\n      board: pico1\n      commands:\n        - send:\n            action: get_status\n")
	b.WriteString("            a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < levels; i++ {
		b.WriteString("            a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [" + strings.Repeat("*a"+strconv.Itoa(i-1)+", ", 9) + "*a" + strconv.Itoa(i-1) + "]\n")
	}
	return b.String()
}

// deepBlock nests n block mappings, each indented one more space.
func deepBlock(n int) string {
	var b strings.Builder
	b.WriteString("name: deep\nsteps:\n- control:\n  commands:\n  - send:\n")
	for i := range n {
		b.WriteString(strings.Repeat(" ", 6+i) + "k:\n")
	}
	b.WriteString(strings.Repeat(" ", 6+n) + "x\n")
	return b.String()
}

// FuzzParseScenario: Parse never panics, even in go-yaml; it returns a
// scenario or an error, not both and not neither; its errors are *Error,
// placed within the file; and it takes bounded time and memory, as does
// writing out a parsed scenario's commands, as the runner does.
func FuzzParseScenario(f *testing.F) {
	files, _ := filepath.Glob("../../scenarios/*.yaml")
	if len(files) == 0 {
		f.Fatal("no bundled scenarios in ../../scenarios")
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range crafted() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		start := time.Now()
		s, err := Parse("f.yaml", src)
		elapsed := time.Since(start)
		checkParsed(t, src, s, err)
		if s != nil {
			// The runner writes commands and replies out; aliases must not
			// make that big.
			n := 0
			for _, st := range s.Steps {
				if st.Control != nil {
					for _, c := range st.Control.Commands {
						n += len(commandJSON(c.Send)) + len(commandJSON(c.Reply))
					}
				}
				if st.Expect != nil {
					n += len(describe(st.Expect))
				}
			}
			if n > 16<<20 {
				t.Errorf("the commands of a %d-byte scenario write out to %d bytes", len(src), n)
			}
		}
		runtime.ReadMemStats(&m1)
		if a := m1.TotalAlloc - m0.TotalAlloc; a > 256<<20 {
			t.Errorf("parsing %d bytes allocated %d MB", len(src), a>>20)
		}
		if elapsed > 10*time.Second {
			t.Errorf("parsing %d bytes took %v", len(src), elapsed)
		}
	})
}

// checkParsed checks what Parse returned for src.
func checkParsed(t *testing.T, src []byte, s *Scenario, err error) {
	t.Helper()
	if (s == nil) == (err == nil) {
		t.Fatalf("Parse returned scenario %v and error %v", s != nil, err)
	}
	if err == nil {
		return
	}
	src = bytes.TrimPrefix(src, bom)
	lines := bytes.Split(src, []byte("\n"))
	var leaves func(err error)
	leaves = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				leaves(e)
			}
			return
		}
		e, ok := err.(*Error)
		if !ok {
			t.Fatalf("error %T %q is not an *Error", err, err)
		}
		if strings.Contains(e.Msg, "the YAML library failed") {
			t.Fatalf("go-yaml panicked: %v", e)
		}
		switch {
		case e.Line < 0 || e.Line > len(lines) || e.Col < 0:
			t.Fatalf("error %q is at %d:%d, outside the file's %d lines", e, e.Line, e.Col, len(lines))
		case e.Line == 0 && e.Col != 0:
			t.Fatalf("error %q has a column but no line", e)
		case e.Line > 0 && e.Col > utf8.RuneCount(lines[e.Line-1])+1:
			t.Fatalf("error %q is at column %d of a line of %d characters", e, e.Col, utf8.RuneCount(lines[e.Line-1]))
		}
		if e.File != "f.yaml" {
			t.Fatalf("error %q names file %q", e, e.File)
		}
	}
	leaves(err)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q has no *Error", err)
	}
}
