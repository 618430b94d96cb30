package scenario

import (
	"errors"
	"fmt"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
	"github.com/picosim/picosim/sim/yamlguard"
)

// maxFileSize bounds a scenario file, checked before go-yaml decodes it,
// with yamlguard's other bounds (see there why): scenarios are small (the
// bundled ones are under 2 KiB, with no anchors), and the bounds are far
// above that yet keep `picosim validate` and `picosim run` within about
// 100 MB on any input.
const maxFileSize = yamlguard.MaxFileBytes

// guardLimits is what yamlguard allows a scenario file, and how its messages
// name one: "a scenario needs far fewer".
var guardLimits = yamlguard.Limits{
	MaxFileBytes: maxFileSize,
	Noun:         yamlguard.Noun{A: "a scenario", One: "scenario", Many: "scenarios"},
}

// checkYAML refuses with yamlguard what would crash go-yaml or make it
// (or the runner after it) take unbounded time or memory: text that is not
// text, tags, deep nesting, second documents, alias bombs. Then
// checkShapes refuses lists and mappings where single values belong. It
// returns the parsed file and its document, for yaml.NodeToValue.
func checkYAML(path string, src []byte) (*ast.File, ast.Node, *Error) {
	doc, err := yamlguard.Check(src, guardLimits)
	if err != nil {
		e := &Error{File: path, Msg: err.Error()}
		var g *yamlguard.Error
		if errors.As(err, &g) { // always
			e.Line, e.Col, e.Msg = g.Line, g.Col, g.Msg
		}
		return nil, nil, e
	}
	if doc.Body == nil {
		return doc.File, nil, nil
	}
	anchors := make(map[string]*anchor, len(doc.Anchors))
	for name, n := range doc.Anchors {
		anchors[name] = &anchor{node: n}
	}
	if e := checkShapes(path, doc.Body, anchors); e != nil {
		return nil, nil, e
	}
	return doc.File, doc.Body, nil
}

// anchor is an anchor of the document, for checkShapes to resolve its
// aliases.
type anchor struct {
	node *ast.AnchorNode
}

// errAt is an Error at a token.
func errAt(path string, tk *token.Token, format string, args ...any) *Error {
	e := &Error{File: path, Msg: fmt.Sprintf(format, args...)}
	if tk != nil && tk.Position != nil {
		e.Line, e.Col = tk.Position.Line, tk.Position.Column
	}
	return e
}

var (
	isNil    = yamlguard.IsNil
	nodeName = yamlguard.NodeName
)
