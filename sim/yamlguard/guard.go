// Package yamlguard checks YAML text before goccy/go-yaml (v1.19.2)
// decodes it, and refuses what would crash go-yaml or make it, or what
// reads the decoded value, take unbounded time or memory. The scenario
// loader and the lab inventory loader use it; what is particular to a
// format (which values may be lists, say) is theirs to check.
//
// Its bounds keep a loader within about 100 MB on any input:
//
//   - go-yaml's parser allocates about 550 bytes per byte of a flow list
//     (1 MiB: 556 MB), so a file is at most MaxFileBytes;
//   - it is quadratic in nesting (100,000 nested "[": 69 s and 15 GB), so
//     nesting is refused before it parses, from the tokens;
//   - aliases are not copied when decoded, but go-yaml writes them out in
//     full for a field that decodes itself (a duration, say), and a
//     program may write a decoded value out in full: an 800-byte file of
//     anchors each aliasing the previous ten times needed 4.5 GB. So what
//     the aliases expand to is counted and bounded.
//
// go-yaml also crashes on some inputs: tags (`boards: !x`, a nil
// dereference in decodeSlice) and aliases inside their own anchor
// (`boards: &b [*b]`, a stack overflow, which no recover can catch). Both
// are refused.
package yamlguard

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
)

// The default Limits: far above what the files checked need (the bundled
// scenarios are under 2 KiB, an inventory under 3 KiB, with no anchors).
const (
	MaxFileBytes     = 64 << 10 // bytes of the file
	MaxDepth         = 64       // nested mappings and sequences, aliases expanded
	MaxNodes         = 100_000  // nodes of the document, aliases expanded
	MaxExpandedBytes = 1 << 20  // bytes of its scalars, aliases expanded
)

// Limits bound what Check accepts; a zero field is its default above.
type Limits struct {
	MaxFileBytes, MaxDepth, MaxNodes, MaxExpandedBytes int
	// Noun names what the file holds, in messages; by default, a
	// document.
	Noun Noun
}

// Noun is what a file holds, as messages name it: with Noun{"a scenario",
// "scenario", "scenarios"} they say "a scenario needs far fewer", "a
// scenario file holds one scenario" and "scenarios use no YAML tags".
type Noun struct{ A, One, Many string }

// Error is what Check refuses, at a line and column of the text (both 0
// when it is about the whole text). The caller names the file.
type Error struct {
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
	}
	return e.Msg
}

// Doc is a document Check accepted, parsed.
type Doc struct {
	File *ast.File // as go-yaml parsed it
	// Body is the content of its one document, for yaml.NodeToValue;
	// nil when the file has none (it is empty, or only comments).
	Body ast.Node
	// Anchors are Body's anchors, by name (each is defined once).
	Anchors map[string]*ast.AnchorNode
}

// ReadFile reads the file at path, but no more than maxBytes+1 bytes of
// it: enough for Check to refuse a longer one, which (or /dev/zero) is not
// read whole.
func ReadFile(path string, maxBytes int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(maxBytes)+1))
}

// Check checks src, parses it and checks its document: it refuses a file
// longer than l.MaxFileBytes, text that is not UTF-8 or has control
// characters, tags, nesting deeper than l.MaxDepth, more than one
// document, and aliases that expand to more than l.MaxNodes nodes or
// l.MaxExpandedBytes bytes, or that cannot be expanded. Its errors are
// *Error, go-yaml's syntax errors included. A byte order mark at the start
// is skipped. What it accepts, yaml.NodeToValue(doc.Body, ...) decodes.
func Check(src []byte, l Limits) (doc *Doc, err error) {
	l = l.orDefaults()
	if len(src) > l.MaxFileBytes {
		return nil, &Error{Msg: fmt.Sprintf("more than %d KiB: %s file is at most that", l.MaxFileBytes>>10, l.Noun.A)}
	}
	src = trimBOM(src) // YAML allows one; go-yaml would make it part of the first key
	if e := l.checkText(src); e != nil {
		return nil, e
	}
	// The checks refuse every input known to crash go-yaml (the scenario
	// loader's fuzz test looks for more). Should one still panic in it,
	// the caller gets an error rather than a crash.
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, &Error{Msg: fmt.Sprintf("the YAML library failed on this input (%v); please report it, with the file", r)}
		}
	}()
	tks := lexer.Tokenize(string(src))
	if e := l.checkTokens(tks); e != nil {
		return nil, e
	}
	f, perr := parser.Parse(tks, 0)
	if perr != nil {
		return nil, AsError(perr)
	}
	doc, e := l.checkDocument(f)
	if e != nil {
		return nil, e
	}
	return doc, nil
}

// AsError is a go-yaml error as an Error at its place. Its message is
// go-yaml's without the excerpt of the source that err.Error() adds,
// which takes time quadratic in the length of the line (2.9 s and 1.3 GB
// for a 60 KB one): the place is enough.
func AsError(err error) *Error {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return &Error{Msg: err.Error()}
	}
	e := &Error{Msg: ye.GetMessage()}
	if tk := ye.GetToken(); tk != nil && tk.Position != nil {
		e.Line, e.Col = tk.Position.Line, tk.Position.Column
	}
	return e
}

func (l Limits) orDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxFileBytes, MaxFileBytes)
	def(&l.MaxDepth, MaxDepth)
	def(&l.MaxNodes, MaxNodes)
	def(&l.MaxExpandedBytes, MaxExpandedBytes)
	if l.Noun == (Noun{}) {
		l.Noun = Noun{"a document", "document", "documents"}
	}
	return l
}

func trimBOM(src []byte) []byte {
	if len(src) >= 3 && string(src[:3]) == "\ufeff" {
		return src[3:]
	}
	return src
}
