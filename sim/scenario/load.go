package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
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
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return Parse(path, src)
}

// Parse checks a scenario given as bytes; path names it in errors.
func Parse(path string, src []byte) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalWithOptions(src, &s, yaml.DisallowUnknownField()); err != nil {
		e := yamlError(path, err)
		if e.Line == 0 {
			e.Line, e.Col = findValue(src, e.Msg) // our own parsers say which value
		}
		return nil, e
	}
	s.File = path
	file, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, yamlError(path, err)
	}
	if errs := s.check(); len(errs) > 0 {
		var out []error
		for _, e := range errs {
			e.File = path
			e.Line, e.Col = position(file, e.path)
			out = append(out, &e.Error)
		}
		return nil, errors.Join(out...)
	}
	s.defaults()
	return &s, nil
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
	e := &Error{File: path, Msg: err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		e.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Col = tk.Position.Line, tk.Position.Column
		}
	}
	var unknown *yaml.UnknownFieldError
	if errors.As(err, &unknown) {
		if m := quoted.FindStringSubmatch(e.Msg); m != nil {
			e.Msg = fmt.Sprintf("unknown field %q", m[1])
			if s := suggest(m[1]); s != "" {
				e.Msg += fmt.Sprintf(": did you mean %q?", s)
			}
		}
	}
	return e
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

// suggest returns the known field closest to name, if close enough.
func suggest(name string) string {
	best, bestD := "", 3 // at most two edits away
	for _, f := range fieldNames {
		if d := distance(name, f); d < bestD {
			best, bestD = f, d
		}
	}
	return best
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
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
