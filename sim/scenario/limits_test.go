package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// allocated is what f allocates, in bytes.
func allocated(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// parseFails parses src and returns its one *Error, which must contain
// want and be placed at line:col (line 0: anywhere in the file).
func parseFails(t *testing.T, src, want string, line, col int) *Error {
	t.Helper()
	s, err := Parse("f.yaml", []byte(src))
	if s != nil || err == nil {
		t.Fatalf("accepted (%v), want an error with %q", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T %v is not an *Error", err, err)
	}
	if !strings.Contains(e.Msg, want) {
		t.Fatalf("error %q lacks %q", e, want)
	}
	if line > 0 && (e.Line != line || e.Col != col) {
		t.Fatalf("error %q is at %d:%d, want %d:%d", e, e.Line, e.Col, line, col)
	}
	if line == 0 && e.Line == 0 && strings.Count(src, "\n") > 0 {
		t.Fatalf("error %q has no place", e)
	}
	return e
}

// An 800-byte file of anchors, each aliasing the one before ten times,
// expands to 10^7 nodes: it took `picosim run` 4.5 GB to write a failure
// out. It is refused where the aliases cross the budget, having cost
// little.
func TestAliasBombsAreRefusedWhereTheyCrossTheBudget(t *testing.T) {
	for _, levels := range []int{6, 7, 9} {
		src := aliasBomb(levels)
		a := allocated(func() {
			parseFails(t, src, "aliases expand to more than 100000 nodes; a scenario needs far fewer (alias bomb?)", 13, 57)
		})
		if a > 50<<20 {
			t.Errorf("%d levels: refusing %d bytes allocated %d MB", levels, len(src), a>>20)
		}
	}
	// Under the budget, aliases are fine, and writing the command out is
	// bounded by it.
	s, err := Parse("f.yaml", []byte(aliasBomb(4)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(commandJSON(s.Steps[0].Control.Commands[0].Send)); n > 1<<20 {
		t.Fatalf("a command of 11,111 expanded nodes writes out to %d bytes", n)
	}
	// A long string aliased many times is bounded by the bytes it expands
	// to.
	src := "name: s\ndescription: &s " + strings.Repeat("x", 30000) + "\ntopology: {boards: 2}\nsteps:\n  - control: {board: pico1, commands: [{send: {action: get_status, x: [" + strings.Repeat("*s, ", 40) + "*s]}}]}\n"
	parseFails(t, src, "aliases expand to more than 1024 KiB of text", 5, 204) // the 34th *s: with the anchor, 35 × 30,000 bytes
}

// Nesting makes go-yaml's parser quadratic (100,000 "[": 69 s, 15 GB):
// it is refused from the tokens, before the parser runs.
func TestDeepNestingIsRefusedBeforeItIsParsed(t *testing.T) {
	for _, c := range []struct {
		name, src string
		line, col int
	}{
		{"flow lists", "labels: " + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + "\n", 1, 74},
		{"flow mappings", "labels: " + strings.Repeat("{a: ", 12000) + strings.Repeat("}", 12000) + "\n", 1, 269},
		{"block lists", strings.Repeat("- ", 30000) + "x\n", 1, 133},
		{"block mappings", deepBlock(300), 69, 70},
	} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.src) > maxFileSize {
				t.Fatalf("%d bytes: over the file limit, which would refuse it first", len(c.src))
			}
			a := allocated(func() {
				parseFails(t, c.src, "nested more than 64 levels deep", c.line, c.col)
			})
			if a > 50<<20 {
				t.Errorf("refusing %d bytes allocated %d MB", len(c.src), a>>20)
			}
		})
	}
	// Nesting made of aliases counts too.
	src := "name: d\ntopology: {boards: 2}\nsteps:\n  - control: {board: pico1, commands: [{send: {action: get_status, b0: &b0 [x]"
	for i := 1; i < 100; i++ {
		src += ", b" + strconv.Itoa(i) + ": &b" + strconv.Itoa(i) + " [*b" + strconv.Itoa(i-1) + "]"
	}
	parseFails(t, src+"}}]}\n", "with its aliases expanded, nested more than 64 levels deep", 4, 1072)
	// 64 levels are allowed: the scenario, steps, the step, control,
	// commands, the command, send, and 57 lists.
	nested := func(n int) string {
		return "name: x\ntopology: {boards: 2}\nsteps:\n  - control: {board: pico1, commands: [{send: {action: get_status, x: " + strings.Repeat("[", n) + strings.Repeat("]", n) + "}}]}\n"
	}
	if _, err := Parse("f.yaml", []byte(nested(57))); err != nil {
		t.Fatal(err)
	}
	parseFails(t, nested(58), "nested more than 64 levels deep", 4, 128) // the 58th [
}

// A file over the limit is refused without being read whole.
func TestLargeFilesAreRefusedUnread(t *testing.T) {
	parseFails(t, "name: "+strings.Repeat("x", maxFileSize), "more than 64 KiB", 0, 0)
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, make([]byte, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if a := allocated(func() { _, err = Load(path) }); a > 2<<20 {
		t.Errorf("refusing a 16 MiB file allocated %d MB", a>>20)
	}
	if err == nil || !strings.Contains(err.Error(), "big.yaml: more than 64 KiB") {
		t.Fatalf("got %v", err)
	}
}

// Tags crashed go-yaml (`labels: !x`: a nil dereference in decodeSlice);
// the format has no use for any.
func TestTagsAreRefused(t *testing.T) {
	parseFails(t, "labels: !x\n", "tag !x: scenarios use no YAML tags", 1, 9)
	parseFails(t, "steps: !x\n", "tag !x", 1, 8)
	parseFails(t, "labels: !!str x\n", "tag !!str", 1, 9)
	parseFails(t, "name: x\ntopology: {boards: !!int 2}\n", "tag !!int", 2, 20)
}

// Aliases inside their own anchor overflowed go-yaml's stack, which no
// recover can catch; anchors defined twice and aliases before their anchor
// are refused too, as are second documents, which go-yaml ignored.
func TestAnchorsAndDocumentsThatCannotBeRead(t *testing.T) {
	parseFails(t, "name: x\ntopology: {boards: &b [*b]}\n", "alias *b is inside its own anchor &b (line 2)", 2, 24)
	parseFails(t, "name: *x\n", "alias *x: no anchor &x before it", 1, 7)
	parseFails(t, "name: &a x\ndescription: &a y\n", "anchor &a is defined again (first at line 1)", 2, 14)
	parseFails(t, "name: x\ntopology: {boards: 2}\n---\nname: y\n", "a second YAML document", 4, 1)
	parseFails(t, "name: x\x00\n", "control character U+0000", 1, 8)
	parseFails(t, "name: \xff\n", "byte 0xff is not UTF-8", 1, 7)
	// What is fine: anchors used as they are meant, merge keys, a byte
	// order mark, a directive.
	for _, src := range []string{
		"name: x\ntopology:\n  boards: 2\n  network: &n {loss: 10%, latency: 20ms}\nsteps:\n  - set_link: {board: pico2, <<: *n}\n  - set_link: {board: pico1, <<: *n, jitter: 1ms}\n",
		"\ufeffname: x\ntopology: {boards: 2}\n",
		"%YAML 1.2\n---\nname: x\ntopology: {boards: 2}\n...\n",
	} {
		if _, err := Parse("f.yaml", []byte(src)); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

// A list or a mapping where a single value belongs is refused before
// go-yaml writes it out and parses it again (1.3 s, 125 MB for 64 KiB).
func TestListsWhereSingleValuesBelong(t *testing.T) {
	list := "[" + strings.Repeat("1,", 30000) + "1]"
	for _, c := range []struct{ field, src, want string }{
		{"radio", "name: x\ntopology: {boards: 2, network: {radio: " + list + "}}\n", "radio: one of picow, ideal, not a list"},
		{"latency", "name: x\ntopology: {boards: 2, network: {latency: " + list + "}}\n", "latency: a duration such as 1.5s, not a list"},
		{"loss", "name: x\ntopology: {boards: 2, network: {loss: " + list + "}}\n", "loss: a rate such as 10%, not a list"},
		{"boards", "name: x\ntopology: {boards: " + list + "}\n", "boards item: a mapping, not a single value"},
	} {
		t.Run(c.field, func(t *testing.T) {
			a := allocated(func() { parseFails(t, c.src, c.want, 0, 0) })
			if a > 50<<20 {
				t.Errorf("refusing %d bytes allocated %d MB", len(c.src), a>>20)
			}
		})
	}
}

// go-yaml costs, per value it writes out to parse (a duration, a rate, a
// radio...), a map of every token of the file, and formats its errors with
// an excerpt built in time quadratic in the line: a 64 KiB file of 4,900
// steps took 60 s and 8 GB; one of 10,000 keys on a line, 2.9 s and 1.3 GB.
func TestCostsLinearInTheFile(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"durations", "name: x\ntopology: {boards: 2}\nsteps:\n" + strings.Repeat("  - wait: 1s\n", 4900), ""},
		{"rates and distributions", "name: x\ntopology: {boards: 2}\nsteps:\n" + strings.Repeat("  - set_link: {board: pico2, loss: 1%, distribution: normal, jitter: 1ms}\n", 800), ""},
		{"aliased durations", "name: x\ntopology: {boards: 2, heartbeat: &h 1s}\nsteps:\n" + strings.Repeat("  - wait: *h\n", 5000), ""},
		{"error on a long line", "name: x\ntopology: {boards: 2}\nsteps:\n  - control: {board: pico1, commands: [{send: {" + strings.Repeat("a: 1, ", 10000) + "}}]}\n", `mapping key "a" already defined`},
		{"documents", strings.Repeat("name: x\n---\n", 5000), "a second YAML document"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.src) > maxFileSize {
				t.Fatalf("%d bytes: over the file limit", len(c.src))
			}
			var err error
			a := allocated(func() { _, err = Parse("f.yaml", []byte(c.src)) })
			if c.want == "" && err != nil {
				t.Fatal(err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if a > 100<<20 {
				t.Errorf("parsing %d bytes allocated %d MB", len(c.src), a>>20)
			}
		})
	}
}
