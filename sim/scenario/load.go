package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/picosim/picosim/internal/closest"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/token"
	"github.com/picosim/picosim/sim/yamlguard"
)

// Error is a problem with a scenario file, at a place in it.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Load reads and checks one scenario file.
func Load(path string) (*Scenario, error) {
	src, err := yamlguard.ReadFile(path, maxFileSize) // not a huge one whole
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return Parse(path, src)
}

// bom is the byte order mark some editors put at the start of a file.
var bom = []byte("\ufeff")

// Parse checks a scenario given as bytes; path names it in errors.
//
// Before go-yaml decodes anything, Parse refuses what would crash it or
// make it (or the runner after it) take unbounded time or memory: see
// limits.go. It parses the file once, and decodes that document.
func Parse(path string, src []byte) (*Scenario, error) {
	s, err := parse(path, src)
	if err != nil {
		// go-yaml places an absent value (`topology:` and nothing) a space
		// past the end of its line: at the end is where an editor can go.
		src = bytes.TrimPrefix(src, bom)
		for _, e := range leaves(err) {
			if e.Line > 0 {
				line := src
				for range e.Line - 1 {
					_, line, _ = bytes.Cut(line, []byte("\n"))
				}
				line, _, _ = bytes.Cut(line, []byte("\n"))
				e.Col = min(e.Col, utf8.RuneCount(line)+1)
			}
		}
	}
	return s, err
}

// leaves are the Errors of an error Parse returned.
func leaves(err error) []*Error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	if e, ok := err.(*Error); ok {
		return []*Error{e}
	}
	return nil
}

func parse(path string, src []byte) (s *Scenario, err error) {
	if len(src) > maxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("more than %d KiB: a scenario file is at most that (the bundled ones are under 2 KiB); split it into several scenarios", maxFileSize>>10)}
	}
	// The checks below refuse every input known to crash go-yaml
	// (FuzzParseScenario looks for more). Should one still panic in it,
	// the caller gets an error rather than a crash.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, &Error{File: path, Msg: fmt.Sprintf("the YAML library failed on this input (%v); please report it, with the file", r)}
		}
	}()
	file, body, e := checkYAML(path, src)
	if e != nil {
		return nil, e
	}
	src = bytes.TrimPrefix(src, bom) // as checkYAML read it (YAML allows one), for findValue
	var sc Scenario
	if body != nil { // an empty file decodes to an empty scenario, which check refuses
		// go-yaml stops at the first problem. Every problem at once, in
		// file order, is what fixes a file in one go: the entry at fault
		// is taken out of the tree and the rest decoded again, up to
		// maxDecodeErrors times. The checks of meaning (check) run once
		// the file decodes: on a tree with entries taken out they would
		// complain of what is not missing.
		var errs []*Error
		for len(errs) < maxDecodeErrors {
			sc = Scenario{}
			err := yaml.NodeToValue(body, &sc, yaml.DisallowUnknownField())
			if err == nil {
				break
			}
			e := yamlError(path, err)
			if e.Line == 0 {
				e.Line, e.Col = findValue(src, e.Msg) // our own parsers say which value
			}
			errs = append(errs, e)
			var tk *token.Token
			if ye, ok := err.(yaml.Error); ok || errors.As(err, &ye) {
				tk = ye.GetToken()
			}
			if tk == nil && e.Line > 0 {
				tk = tokenAt(body, e.Line, e.Col) // one of our own parsers refused a value
			}
			if m := wrongType.FindStringSubmatch(e.Msg); m != nil && tk != nil {
				// Go's words ("Go struct field Scenario.Steps of type
				// bool") name neither the key nor what it takes.
				e.Msg = fmt.Sprintf("%s: want %s, not %q", keyOf(body, tk), typeWords(m[2]), tk.Value)
			}
			if tk == nil || !cut(body, tk) {
				break // nothing to take out: what was found is all there is to say
			}
		}
		if len(errs) > 0 {
			sort.SliceStable(errs, func(i, j int) bool {
				return errs[i].Line < errs[j].Line || errs[i].Line == errs[j].Line && errs[i].Col < errs[j].Col
			})
			out := make([]error, len(errs))
			for i, e := range errs {
				out[i] = e
			}
			return nil, errors.Join(out...)
		}
	}
	sc.File = path
	if inc := sc.Topology.Network.Include; inc != "" {
		if err := sc.include(path, inc); err != nil {
			line, col := position(file, "$.topology.network.include")
			return nil, &Error{File: path, Line: line, Col: col, Msg: err.Error()}
		}
	}
	if errs := sc.check(); len(errs) > 0 {
		var out []error
		for _, e := range errs {
			e.File = path
			e.Line, e.Col = position(file, e.path)
			out = append(out, &e.Error)
		}
		return nil, errors.Join(out...)
	}
	sc.defaults()
	return &sc, nil
}

// include reads network.include, a file beside the scenario whose network
// section holds pairs, boards and radios only, and puts them before the
// scenario's own (which win: a pair's link set later replaces an earlier).
func (s *Scenario) include(path, name string) error {
	file := name
	if !filepath.IsAbs(file) {
		file = filepath.Join(filepath.Dir(path), name)
	}
	src, err := yamlguard.ReadFile(file, maxFileSize)
	if err != nil {
		return fmt.Errorf("include %s: %v", name, err)
	}
	_, body, e := checkYAML(file, src)
	if e != nil {
		return fmt.Errorf("include %s: %v", name, e)
	}
	var prof struct {
		Network Network `yaml:"network"`
	}
	if body != nil {
		if err := yaml.NodeToValue(body, &prof, yaml.DisallowUnknownField()); err != nil {
			return fmt.Errorf("include %s: %v", name, yamlError(file, err))
		}
	}
	n := prof.Network
	if n.Include != "" || n.Link != (Link{}) || n.Mode != "" || n.Key != "" || n.Radio != 0 || n.Addressing != 0 {
		return fmt.Errorf("include %s: an included profile gives pairs, boards and radios; set the rest in the scenario", name)
	}
	own := &s.Topology.Network
	own.Pairs = append(n.Pairs, own.Pairs...)
	for b, l := range n.Boards {
		if _, set := own.Boards[b]; !set {
			if own.Boards == nil {
				own.Boards = map[string]Link{}
			}
			own.Boards[b] = l
		}
	}
	for b, r := range n.Radios {
		if _, set := own.Radios[b]; !set {
			if own.Radios == nil {
				own.Radios = map[string]RadioSpec{}
			}
			own.Radios[b] = r
		}
	}
	return nil
}

// LoadAll loads files and the *.yaml files of folders, in name order. It
// returns every problem of every file, and no scenario if there is one.
func LoadAll(paths ...string) ([]*Scenario, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, &Error{File: p, Msg: "no such file or folder"}
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			files = append(files, m...)
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, errors.New("no scenario files (*.yaml) in " + strings.Join(paths, ", "))
	}
	var out []*Scenario
	var errs []error
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

var quoted = regexp.MustCompile(`"([^"]+)"`)

// yamlError turns a go-yaml error into an Error at its place, with a
// suggestion when a field name is unknown.
func yamlError(path string, err error) *Error {
	e := &Error{File: path}
	var ye yaml.Error
	if errors.As(err, &ye) {
		// Not err.Error(): go-yaml's adds an excerpt of the source, built
		// in time quadratic in the length of the line (2.9 s and 1.3 GB
		// for a 60 KB one), and the place is enough.
		e.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Col = tk.Position.Line, tk.Position.Column
		}
	} else {
		e.Msg = err.Error()
	}
	var unknown *yaml.UnknownFieldError
	if errors.As(err, &unknown) {
		if m := quoted.FindStringSubmatch(e.Msg); m != nil {
			e.Msg = fmt.Sprintf("unknown field %q", m[1])
			if homes := fieldHomes[m[1]]; len(homes) > 0 {
				if len(homes) > 3 {
					homes = append(homes[:3:3], fmt.Sprintf("%d other places", len(homes)-3))
				}
				e.Msg += " here: it belongs under " + strings.Join(homes, " or ")
			} else if s := suggest(m[1]); s != "" {
				e.Msg += fmt.Sprintf(": did you mean %q?", s)
			}
		}
		return e // says all: the field is not one of the format's
	}
	var ve *valueError
	if errors.As(err, &ve) && ye != nil {
		e.Msg = ve.what + ": " + e.Msg // go-yaml's message without its excerpt of the source
	}
	return e
}

// maxDecodeErrors bounds the problems one file reports (and the decodes it
// costs).
const maxDecodeErrors = 50

// cut takes out of the tree the mapping entry, or the sequence item, that
// holds the token a decode stopped at, and reports whether it found one.
func cut(root ast.Node, tk *token.Token) bool {
	holds := func(n ast.Node) bool {
		found := false
		ast.Walk(visitor(func(m ast.Node) bool {
			if !found && m.GetToken() == tk {
				found = true
			}
			return !found
		}), n)
		return found
	}
	var walk func(n ast.Node) bool
	walk = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.DocumentNode:
			return walk(n.Body)
		case *ast.MappingNode:
			for i, mv := range n.Values {
				if mv.Key.GetToken() == tk || mv.Value.GetToken() == tk || !holds(mv.Value) && holds(mv) {
					n.Values = append(n.Values[:i], n.Values[i+1:]...)
					return true
				}
				if holds(mv.Value) {
					return walk(mv.Value) || cutEntry(n, i)
				}
			}
		case *ast.MappingValueNode:
			if n.Key.GetToken() == tk || n.Value.GetToken() == tk {
				return false // a single entry: the caller takes it out
			}
			return walk(n.Value)
		case *ast.SequenceNode:
			for i, v := range n.Values {
				if v.GetToken() == tk {
					n.Values = append(n.Values[:i], n.Values[i+1:]...)
					return true
				}
				if holds(v) {
					return walk(v)
				}
			}
		}
		return false
	}
	return walk(root)
}

// cutEntry takes entry i out of a mapping, for a problem deeper in it that
// walk could not single out.
func cutEntry(m *ast.MappingNode, i int) bool {
	m.Values = append(m.Values[:i], m.Values[i+1:]...)
	return true
}

var wrongType = regexp.MustCompile(`cannot unmarshal (\S+) into Go (?:struct field \S+ of type|value of type) (\S+)`)

// typeWords says what a Go type takes, in a scenario's words.
func typeWords(t string) string {
	switch {
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "text"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping (key: value lines)"
	}
	return "a mapping (key: value lines)"
}

// keyOf returns the key of the mapping entry whose value is tk's node, or
// "value".
func keyOf(root ast.Node, tk *token.Token) string {
	key := "value"
	ast.Walk(visitor(func(n ast.Node) bool {
		if mv, ok := n.(*ast.MappingValueNode); ok && mv.Value.GetToken() == tk {
			key = mv.Key.String()
			return false
		}
		return true
	}), root)
	return key
}

// tokenAt returns the token of the node at a line and column, if any.
func tokenAt(root ast.Node, line, col int) *token.Token {
	var found *token.Token
	ast.Walk(visitor(func(n ast.Node) bool {
		if tk := n.GetToken(); found == nil && tk != nil && tk.Position != nil && tk.Position.Line == line && tk.Position.Column == col {
			found = tk
		}
		return found == nil
	}), root)
	return found
}

type visitor func(ast.Node) bool

func (v visitor) Visit(n ast.Node) ast.Visitor {
	if v(n) {
		return v
	}
	return nil
}

// findValue returns where the first scalar quoted in msg stands in src.
func findValue(src []byte, msg string) (int, int) {
	m := quoted.FindStringSubmatch(msg)
	if m == nil {
		return 0, 0
	}
	for _, tk := range lexer.Tokenize(string(src)) {
		if tk.Value == m[1] && tk.Position != nil {
			return tk.Position.Line, tk.Position.Column
		}
	}
	return 0, 0
}

// fieldNames are the keys the format knows.
var fieldNames = func() []string {
	seen := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t.Name()+"#"] {
			return
		}
		seen[t.Name()+"#"] = true
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				seen[name] = true
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Scenario{}))
	var names []string
	for n := range seen {
		if !strings.HasSuffix(n, "#") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}()

// fieldHomes says where each key of the format goes ("topology",
// "steps[].control", "the top level"): a known key in the wrong place is
// told where it belongs, not that it is misspelt.
var fieldHomes = func() map[string][]string {
	homes := map[string][]string{}
	var walk func(t reflect.Type, at string, depth int)
	walk = func(t reflect.Type, at string, depth int) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			if t.Kind() != reflect.Pointer {
				at += "[]"
			}
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || depth > 6 {
			return
		}
		home := at
		if home == "" {
			home = "the top level"
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case name == "-":
			case name == "" && strings.Contains(opts, "inline"):
				walk(f.Type, at, depth+1)
			case name != "":
				if !slices.Contains(homes[name], home) {
					homes[name] = append(homes[name], home)
				}
				walk(f.Type, strings.TrimPrefix(at+"."+name, "."), depth+1)
			}
		}
	}
	walk(reflect.TypeOf(Scenario{}), "", 0)
	return homes
}()

// suggest returns the known field closest to name, if close enough.
func suggest(name string) string {
	best, bestD := "", 3 // at most two edits away
	for _, f := range fieldNames {
		if d := closest.Distance(name, f); d < bestD {
			best, bestD = f, d
		}
	}
	return best
}

// position finds where a YAML path such as $.steps[2].power_off is.
func position(f *ast.File, path string) (int, int) {
	for path != "" {
		p, err := yaml.PathString(path)
		if err == nil {
			if n, err := p.FilterFile(f); err == nil && n != nil {
				if tk := n.GetToken(); tk != nil && tk.Position != nil {
					return tk.Position.Line, tk.Position.Column
				}
			}
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 1 {
			break
		}
		path = path[:i] // the parent, when the field itself is absent
	}
	return 0, 0
}
