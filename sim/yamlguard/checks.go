package yamlguard

import (
	"fmt"
	"reflect"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// errAt is an Error at a token.
func errAt(tk *token.Token, format string, args ...any) *Error {
	e := &Error{Msg: fmt.Sprintf(format, args...)}
	if tk != nil && tk.Position != nil {
		e.Line, e.Col = tk.Position.Line, tk.Position.Column
	}
	return e
}

// checkText refuses what is not YAML text: bytes that are not UTF-8 and
// control characters (YAML allows tab, line feed and carriage return
// only). go-yaml reads them without complaint, and they would end up in
// names, reports and file names.
func (l Limits) checkText(src []byte) *Error {
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return &Error{Line: line, Col: col, Msg: fmt.Sprintf("byte 0x%02x is not UTF-8 text: save the file as UTF-8", src[i])}
		case r == '\n':
			line, col = line+1, 0
		case r == '\r' && i+1 < len(src) && src[i+1] == '\n':
		case r == '\r':
			// YAML ends a line there too, as old Macs did; editors and
			// these errors' line numbers may not. No file needs one.
			return &Error{Line: line, Col: col, Msg: "a carriage return (\\r) without a line feed after it: save the file with LF or CRLF line ends"}
		case r == '\t':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0 && r != 0x85) || r == 0xfffe || r == 0xffff:
			return &Error{Line: line, Col: col, Msg: fmt.Sprintf("control character %U: %s is text; remove it", r, l.Noun.A)}
		case r == 0xfeff:
			return &Error{Line: line, Col: col, Msg: "a byte order mark (U+FEFF) inside the text; remove it"}
		}
		i += n
		col++
	}
	return nil
}

// checkTokens refuses, from go-yaml's tokens and before its parser runs,
// tags, deep nesting and second documents.
//
// Tags: go-yaml crashes on a tag before a value of the wrong kind
// (`labels: !x` or `labels: !!str x`: a nil dereference in decodeSlice),
// and the formats have no use for any.
//
// Nesting: the parser is quadratic in it, so it is estimated here from the
// columns of the block nodes that enclose each token, plus the open flow
// brackets. The estimate is near the depth, not exact: it counts the
// innermost scalar too, and a list written at the indentation of its key
// counts as one level with the mapping. That is enough to keep the parser
// from its quadratic cost (refused here at MaxDepth+2, the parser sees at
// most twice that); checkDocument checks the exact depth on the parsed
// document.
func (l Limits) checkTokens(tks token.Tokens) *Error {
	var cols []int                 // columns of the block nodes enclosing the current token
	flow := 0                      // open [ and {
	content, ended := false, false // a document's content seen; and then its end
	directive := 0                 // the line of a directive (%YAML 1.2): its words are not content
	for _, tk := range tks {
		if tk == nil || tk.Position == nil {
			continue
		}
		if tk.Type == token.DirectiveType {
			directive = tk.Position.Line
		}
		if tk.Position.Line == directive && tk.Type != token.TagType {
			continue
		}
		switch tk.Type {
		case token.TagType:
			return errAt(tk, "tag %s: %s use no YAML tags; write the value without it (quote it, as \"12\", to make it a string)", tk.Value, l.Noun.Many)
		case token.CommentType, token.SpaceType,
			token.MappingValueType, token.CollectEntryType, token.AnchorType:
			continue
		case token.DocumentHeaderType, token.DocumentEndType:
			cols, flow = cols[:0], 0
			ended = content
			continue
		}
		if ended {
			// As checkDocument does, but before the parser: 5,000
			// documents took it 0.6 s and 116 MB.
			return errAt(tk, "%s", l.secondDocument())
		}
		content = true
		if tk.Type == token.SequenceEndType || tk.Type == token.MappingEndType {
			flow = max(flow-1, 0)
			continue
		}
		if flow == 0 {
			for len(cols) > 0 && cols[len(cols)-1] >= tk.Position.Column {
				cols = cols[:len(cols)-1]
			}
		}
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			flow++
		default:
			if flow == 0 {
				cols = append(cols, tk.Position.Column)
			}
		}
		if len(cols)+flow > l.MaxDepth+2 {
			return errAt(tk, "nested more than %d levels deep; %s needs far fewer", l.MaxDepth, l.Noun.A)
		}
	}
	return nil
}

// secondDocument is said of a second document: go-yaml would ignore it
// silently.
func (l Limits) secondDocument() string {
	return fmt.Sprintf("a second YAML document: %s file holds one %s; put this one in a file of its own", l.Noun.A, l.Noun.One)
}

// anchor is what checkDocument knows of an anchor: what its value expands
// to, once it has been walked.
type anchor struct {
	node         *ast.AnchorNode
	done         bool // walked: an alias to it before then is inside it
	nodes, bytes int  // expanded
	depth        int  // nesting of its value, aliases expanded
}

// expansion walks a document as it would be with its aliases expanded,
// counting nodes and bytes, without expanding anything: an alias adds what
// its anchor expands to, counted once when the anchor was walked.
type expansion struct {
	Limits
	anchors      map[string]*anchor
	nodes, bytes int
}

// checkDocument refuses, before go-yaml decodes the document: aliases
// that expand to more than MaxNodes nodes or MaxExpandedBytes bytes (a
// "billion laughs"), nesting deeper than MaxDepth with aliases expanded,
// aliases inside their own anchor (go-yaml overflows its stack on
// `boards: &b [*b]`, which no recover can catch), aliases with no anchor
// before them, anchors defined twice (which one an alias means would
// depend on go-yaml's order of decoding, and so would what it expands
// to), and a second document (go-yaml would ignore it silently).
func (l Limits) checkDocument(f *ast.File) (*Doc, *Error) {
	doc := &Doc{File: f}
	x := &expansion{Limits: l, anchors: map[string]*anchor{}}
	for _, d := range f.Docs {
		if d == nil || IsNil(d.Body) {
			continue
		}
		if _, ok := d.Body.(*ast.DirectiveNode); ok {
			continue // %YAML 1.2: go-yaml makes it a document of its own
		}
		if doc.Body != nil {
			return nil, errAt(d.Body.GetToken(), "%s", l.secondDocument())
		}
		doc.Body = d.Body
		if _, err := x.walk(doc.Body, 0); err != nil {
			return nil, err
		}
	}
	doc.Anchors = make(map[string]*ast.AnchorNode, len(x.anchors))
	for name, a := range x.anchors {
		doc.Anchors[name] = a.node
	}
	return doc, nil
}

// walk counts n, nested in depth mappings and sequences, and returns the
// depth of the mappings and sequences within it.
func (x *expansion) walk(n ast.Node, depth int) (int, *Error) {
	if IsNil(n) {
		return 0, nil // an absent value, as null
	}
	x.nodes++
	if x.nodes > x.MaxNodes {
		return 0, errAt(n.GetToken(), "the document has more than %d nodes; %s needs far fewer", x.MaxNodes, x.Noun.A)
	}
	tooDeep := func() *Error {
		return errAt(n.GetToken(), "nested more than %d levels deep; %s needs far fewer", x.MaxDepth, x.Noun.A)
	}
	switch n := n.(type) {
	case *ast.MappingNode:
		if depth+1 > x.MaxDepth {
			return 0, tooDeep()
		}
		inner := 0
		for _, kv := range n.Values {
			d, err := x.pair(kv, depth+1)
			if err != nil {
				return 0, err
			}
			inner = max(inner, d)
		}
		return inner + 1, nil
	case *ast.MappingValueNode: // a mapping of one pair, as go-yaml may give it
		if depth+1 > x.MaxDepth {
			return 0, tooDeep()
		}
		d, err := x.pair(n, depth+1)
		return d + 1, err
	case *ast.SequenceNode:
		if depth+1 > x.MaxDepth {
			return 0, tooDeep()
		}
		inner := 0
		for _, v := range n.Values {
			d, err := x.walk(v, depth+1)
			if err != nil {
				return 0, err
			}
			inner = max(inner, d)
		}
		return inner + 1, nil
	case *ast.MappingKeyNode: // ? key
		return x.walk(n.Value, depth)
	case *ast.TagNode: // checkTokens refuses tags; should one come through
		return 0, errAt(n.GetToken(), "tag %s: %s use no YAML tags; write the value without it", n.Start.Value, x.Noun.Many)
	case *ast.AnchorNode:
		name := NodeName(n.Name)
		if a, ok := x.anchors[name]; ok {
			return 0, errAt(n.GetToken(), "anchor &%s is defined again (first at line %d); give each anchor a name of its own", name, line(a.node))
		}
		a := &anchor{node: n}
		x.anchors[name] = a
		nodes, bytes := x.nodes, x.bytes
		d, err := x.walk(n.Value, depth)
		if err != nil {
			return 0, err
		}
		a.done, a.nodes, a.bytes, a.depth = true, x.nodes-nodes, x.bytes-bytes, d
		return d, nil
	case *ast.AliasNode:
		name := NodeName(n.Value)
		a, ok := x.anchors[name]
		switch {
		case !ok:
			return 0, errAt(n.GetToken(), "alias *%s: no anchor &%s before it; define it first, as &%s value", name, name, name)
		case !a.done:
			return 0, errAt(n.GetToken(), "alias *%s is inside its own anchor &%s (line %d): the value would contain itself", name, name, line(a.node))
		}
		x.nodes += a.nodes - 1 // the alias itself was counted above
		x.bytes += a.bytes
		switch {
		case x.nodes > x.MaxNodes:
			return 0, errAt(n.GetToken(), "aliases expand to more than %d nodes; %s needs far fewer (alias bomb?)", x.MaxNodes, x.Noun.A)
		case x.bytes > x.MaxExpandedBytes:
			return 0, errAt(n.GetToken(), "aliases expand to more than %d KiB of text; %s needs far less (alias bomb?)", x.MaxExpandedBytes>>10, x.Noun.A)
		case depth+a.depth > x.MaxDepth:
			return 0, errAt(n.GetToken(), "with its aliases expanded, nested more than %d levels deep; %s needs far fewer", x.MaxDepth, x.Noun.A)
		}
		return a.depth, nil
	case *ast.LiteralNode:
		if n.Value != nil {
			return 0, x.add(n, len(n.Value.Value))
		}
	case *ast.StringNode:
		return 0, x.add(n, len(n.Value))
	default: // other scalars: numbers, booleans, null, merge keys
		if tk := n.GetToken(); tk != nil {
			return 0, x.add(n, len(tk.Value))
		}
	}
	return 0, nil
}

// pair counts a key and its value.
func (x *expansion) pair(kv *ast.MappingValueNode, depth int) (int, *Error) {
	if kv == nil {
		return 0, nil
	}
	var key ast.Node
	if !IsNil(kv.Key) {
		key = kv.Key
	}
	dk, err := x.walk(key, depth)
	if err != nil {
		return 0, err
	}
	dv, err := x.walk(kv.Value, depth)
	return max(dk, dv), err
}

// add counts the bytes of a scalar.
func (x *expansion) add(n ast.Node, bytes int) *Error {
	x.bytes += bytes
	if x.bytes > x.MaxExpandedBytes {
		return errAt(n.GetToken(), "the document has more than %d KiB of text; %s needs far less", x.MaxExpandedBytes>>10, x.Noun.A)
	}
	return nil
}

// IsNil says whether n is nil, or a nil pointer in an interface (go-yaml
// leaves both in its trees).
func IsNil(n any) bool {
	if n == nil {
		return true
	}
	v := reflect.ValueOf(n)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// NodeName is an anchor's or alias's name, as Doc.Anchors is keyed.
func NodeName(n ast.Node) string {
	if IsNil(n) {
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return n.String()
}

func line(n ast.Node) int {
	if IsNil(n) {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}
