package yamlguard

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
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

var noun = Limits{Noun: Noun{A: "a lab", One: "lab", Many: "labs"}}

// bomb is a "billion laughs": levels anchors, each aliasing the one before
// ten times.
func bomb(levels int) string {
	b := "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i < levels; i++ {
		b += "a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [" + strings.Repeat("*a"+strconv.Itoa(i-1)+", ", 9) + "*a" + strconv.Itoa(i-1) + "]\n"
	}
	return b
}

// Each of these crashed go-yaml, or cost it gigabytes or minutes, or
// would be read silently wrong. Check refuses each at its place, cheaply.
func TestCheckRefusesHostileYAML(t *testing.T) {
	for _, c := range []struct {
		name, src string
		line, col int
		want      string
	}{
		{"too large", "a: " + strings.Repeat("x", MaxFileBytes), 0, 0, "more than 64 KiB: a lab file is at most that"},
		{"not UTF-8", "a: \xff\n", 1, 4, "byte 0xff is not UTF-8 text: save the file as UTF-8"},
		{"control character", "a: b\nc: d\x00\n", 2, 5, "control character U+0000: a lab is text; remove it"},
		{"lone carriage return", "a: b\rc: d\n", 1, 5, `a carriage return (\r) without a line feed after it: save the file with LF or CRLF line ends`},
		{"byte order mark inside", "a: b\ufeff\n", 1, 5, "a byte order mark (U+FEFF) inside the text; remove it"},
		{"tag", "boards: !x\n", 1, 9, `tag !x: labs use no YAML tags; write the value without it (quote it, as "12", to make it a string)`},
		{"standard tag", "a: [!!str x]\n", 1, 5, "tag !!str: labs use no YAML tags"},
		{"flow nesting", "a: " + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + "\n", 1, 69, "nested more than 64 levels deep; a lab needs far fewer"},
		{"block nesting", strings.Repeat("- ", 30000) + "x\n", 1, 133, "nested more than 64 levels deep; a lab needs far fewer"},
		{"nesting by aliases", "a0: &a0 [x]\n" + func() string {
			s := ""
			for i := 1; i < 70; i++ {
				s += "a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [*a" + strconv.Itoa(i-1) + "]\n"
			}
			return s
		}(), 64, 12, "with its aliases expanded, nested more than 64 levels deep; a lab needs far fewer"},
		{"alias bomb", bomb(9), 5, 45, "aliases expand to more than 100000 nodes; a lab needs far fewer (alias bomb?)"},
		{"text bomb", "a: &s " + strings.Repeat("x", 30000) + "\nb: [" + strings.Repeat("*s, ", 40) + "*s]\n", 2, 137, "aliases expand to more than 1024 KiB of text; a lab needs far less (alias bomb?)"},
		{"alias inside its anchor", "a: &b [*b]\n", 1, 8, "alias *b is inside its own anchor &b (line 1): the value would contain itself"},
		{"alias before its anchor", "a: *x\n", 1, 4, "alias *x: no anchor &x before it; define it first, as &x value"},
		{"anchor defined twice", "a: &x 1\nb: &x 2\n", 2, 4, "anchor &x is defined again (first at line 1); give each anchor a name of its own"},
		{"second document", "a: 1\n---\nb: 2\n", 3, 1, "a second YAML document: a lab file holds one lab; put this one in a file of its own"},
		{"5,000 documents", strings.Repeat("a: 1\n---\n", 5000), 3, 1, "a second YAML document"},
		{"syntax error", "a: [" + strings.Repeat("b, ", 20000) + "\n", 1, 4, "sequence end token ']' not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var doc *Doc
			var err error
			if a := allocated(func() { doc, err = Check([]byte(c.src), noun) }); a > 50<<20 {
				t.Errorf("refusing %d bytes allocated %d MB", len(c.src), a>>20)
			}
			var e *Error
			if doc != nil || !errors.As(err, &e) {
				t.Fatalf("got %v, %T %v; want an *Error", doc, err, err)
			}
			if !strings.HasPrefix(e.Msg, c.want) || e.Line != c.line || e.Col != c.col {
				t.Fatalf("got %d:%d: %q\nwant %d:%d: %q...", e.Line, e.Col, e.Msg, c.line, c.col, c.want)
			}
		})
	}
}

// What the files use is accepted: anchors and merge keys, a byte order
// mark at the start, CRLF, a directive, comments.
func TestCheckAcceptsWhatFilesUse(t *testing.T) {
	for _, src := range []string{
		"a: &n {x: 1}\nb: {<<: *n, y: 2}\nc: [*n, *n]\n",
		"\ufeffa: 1\n",
		"a: 1\r\nb:\r\n  - 2\r\n",
		"%YAML 1.2\n---\na: 1\n...\n",
		"# a comment\na: 1 # another\n",
		"a: 1\n" + bomb(4), // 11,111 nodes
	} {
		doc, err := Check([]byte(src), Limits{})
		if err != nil || doc.Body == nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		var v map[string]any
		if err := yaml.NodeToValue(doc.Body, &v); err != nil || v["a"] == nil {
			t.Errorf("%q decodes to %v, %v", src, v, err)
		}
	}
	doc, err := Check([]byte("a: &n 1\nb: *n\n"), Limits{})
	if err != nil || len(doc.Anchors) != 1 || doc.Anchors["n"] == nil {
		t.Errorf("anchors %v, %v", doc.Anchors, err)
	}
	for _, src := range []string{"", "# nothing\n", "---\n"} {
		if doc, err := Check([]byte(src), Limits{}); err != nil || doc.Body != nil {
			t.Errorf("%q: %v, %v", src, doc.Body, err)
		}
	}
}

// A caller may tighten (or loosen) the bounds.
func TestCheckTakesTheCallersLimits(t *testing.T) {
	l := Limits{MaxFileBytes: 2 << 10, MaxDepth: 3, MaxNodes: 10, MaxExpandedBytes: 1 << 10}
	for src, want := range map[string]string{
		"a: " + strings.Repeat("x", 2<<10):                "more than 2 KiB: a document file is at most that",
		"a: [[[x]]]\n":                                    "nested more than 3 levels deep; a document needs far fewer",
		"a: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n":                "the document has more than 10 nodes",
		"a: " + strings.Repeat("x", 1100) + "\n":          "the document has more than 1 KiB of text",
		"a: &a " + strings.Repeat("x", 600) + "\nb: *a\n": "aliases expand to more than 1 KiB of text",
	} {
		if _, err := Check([]byte(src), l); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.20q: got %v, want %q", src, err, want)
		}
	}
}

// ReadFile reads one byte past the limit, no more: a huge file is refused
// unread.
func TestReadFileStopsPastTheLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, make([]byte, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var src []byte
	var err error
	if a := allocated(func() { src, err = ReadFile(path, MaxFileBytes) }); a > 2<<20 {
		t.Errorf("reading allocated %d MB", a>>20)
	}
	if err != nil || len(src) != MaxFileBytes+1 {
		t.Fatalf("read %d bytes, %v", len(src), err)
	}
	if _, err := Check(src, Limits{}); err == nil || err.Error() != "more than 64 KiB: a document file is at most that" {
		t.Fatalf("got %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none.yaml"), MaxFileBytes); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

// AsError places go-yaml's errors without its excerpt of the source,
// which it builds in time quadratic in the line.
func TestAsErrorLeavesTheSourceOut(t *testing.T) {
	var v struct{ A int }
	err := yaml.UnmarshalWithOptions([]byte("a: 1\nb: 2\n"), &v, yaml.DisallowUnknownField())
	e := AsError(err)
	if e.Error() != `2:1: unknown field "b"` {
		t.Fatalf("got %q from %q", e, err)
	}
	if e := AsError(errors.New("x")); e.Error() != "x" || e.Line != 0 {
		t.Fatalf("got %q", e)
	}
}
