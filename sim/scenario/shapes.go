package scenario

import (
	"encoding"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// checkShapes walks the document along the Go types it decodes into and
// refuses a list or a mapping where a single value belongs (a name, a
// number, a duration, a rate, a radio...), or where a key belongs.
//
// go-yaml would refuse them too, but dearly: a field that parses its own
// text (Duration, Rate, netsim's Radio, Addressing and Dist) is given the
// value written out again, aliases expanded, which go-yaml then parses
// anew; for a 64 KiB list that took 1.3 s and 125 MB, and its error quoted
// the whole list. Here it costs a walk of the document, and the error
// names the field at its place.
func checkShapes(path string, body ast.Node, anchors map[string]*anchor) *Error {
	s := &shapes{path: path, anchors: anchors, seen: map[shapeKey]bool{}}
	return s.walk(body, reflect.TypeOf(Scenario{}), "the scenario", nil)
}

type shapes struct {
	path    string
	anchors map[string]*anchor
	// seen are the anchors' values already walked as a type: an anchor
	// aliased many times is walked once (its aliases are bounded anyway,
	// by maxExpandedNodes).
	seen map[shapeKey]bool
}

type shapeKey struct {
	n ast.Node
	t reflect.Type
}

var textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

// resolve is the node an anchor or alias stands for.
func (s *shapes) resolve(n ast.Node) (ast.Node, bool) {
	aliased := false
	for range 100 { // an anchor of an alias of an anchor...: checkDocument refused cycles
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.AliasNode:
			a, ok := s.anchors[nodeName(v.Value)]
			if !ok {
				return nil, aliased
			}
			n, aliased = a.node.Value, true
		case *ast.MappingKeyNode: // ? key
			n = v.Value
		default:
			return n, aliased
		}
		if isNil(n) {
			return nil, aliased
		}
	}
	return nil, aliased
}

// what a value of type t is, for messages.
func what(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration such as 1.5s"
	case rateType:
		return "a rate such as 10%"
	}
	if v, ok := reflect.Zero(t).Interface().(interface{ Values() []string }); ok {
		return "one of " + strings.Join(v.Values(), ", ")
	}
	return "a single value"
}

// single says whether a value of type t is one scalar.
func single(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// collection names the kind of n if it is a mapping or a list.
func collection(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return ""
}

// shape names the kind of n: a mapping, a list, a single value, or "" for
// null, which decodes to anything.
func shape(n ast.Node) string {
	if c := collection(n); c != "" {
		return c
	}
	if n.Type() == ast.NullType {
		return ""
	}
	return "a single value"
}

// pairs are the key-value pairs of a mapping.
func pairs(n ast.Node) []*ast.MappingValueNode {
	switch n := n.(type) {
	case *ast.MappingNode:
		return n.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}
	}
	return nil
}

// walk checks n, decoded into a t, the value of field (for messages);
// set, if not nil, replaces n where it stands.
func (s *shapes) walk(n ast.Node, t reflect.Type, field string, set func(ast.Node)) *Error {
	if isNil(n) {
		return nil
	}
	at := n // where to point: the alias rather than its anchor
	n, aliased := s.resolve(n)
	if n == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == boardsType:
		if _, ok := n.(*ast.SequenceNode); ok {
			return s.walk(at, reflect.TypeOf([]BoardSpec{}), field, set)
		}
		return nil // a count, or what go-yaml will refuse cheaply
	case t == targetsType:
		switch n.(type) {
		case *ast.SequenceNode:
			return s.walk(at, reflect.TypeOf([]string{}), field, set)
		case *ast.MappingNode, *ast.MappingValueNode:
			return s.walk(at, reflect.TypeOf(map[string]TargetSettings{}), field, set)
		}
		return nil // go-yaml refuses a single value cheaply
	case single(t):
		if c := collection(n); c != "" {
			return errAt(s.path, at.GetToken(), "%s: %s, not %s", orValue(field), what(t), c)
		}
		if parsesItsText(t) {
			s.detach(at, n, set)
		}
		return nil
	}
	if aliased {
		k := shapeKey{n, t}
		if s.seen[k] {
			return nil
		}
		s.seen[k] = true
	}
	// A list of many values where mappings belong (boards: [1, 1, ...])
	// takes go-yaml an error for each: 1.2 s and 90 MB for 64 KiB. The
	// first is enough.
	want := map[reflect.Kind]string{reflect.Struct: "a mapping", reflect.Map: "a mapping", reflect.Slice: "a list"}[t.Kind()]
	if got := shape(n); want != "" && got != "" && got != want {
		return errAt(s.path, at.GetToken(), "%s: %s, not %s", orValue(field), want, got)
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := yamlFields(t)
		for _, kv := range pairs(n) {
			if isNil(kv) {
				continue
			}
			if !isNil(kv.Key) && kv.Key.IsMergeKey() {
				if err := s.merge(kv.Value, t); err != nil {
					return err
				}
				continue
			}
			key, _ := s.resolve(kv.Key)
			if key == nil || collection(key) != "" || key.GetToken() == nil {
				continue // go-yaml refuses it as an unknown field
			}
			if ft, ok := fields[key.GetToken().Value]; ok {
				if err := s.walk(kv.Value, ft, key.GetToken().Value, func(v ast.Node) { kv.Value = v }); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		for _, kv := range pairs(n) {
			if isNil(kv) {
				continue
			}
			if !isNil(kv.Key) && kv.Key.IsMergeKey() {
				if err := s.merge(kv.Value, t); err != nil {
					return err
				}
				continue
			}
			name := orValue(field)
			if !isNil(kv.Key) {
				if key, _ := s.resolve(kv.Key); key != nil {
					if c := collection(key); c != "" {
						return errAt(s.path, kv.Key.GetToken(), "%s: a key is a name or a number, not %s", name, c)
					}
					if tk := key.GetToken(); tk != nil {
						name += " " + tk.Value // boards pico1, pins 2
					}
				}
			}
			if err := s.walk(kv.Value, t.Elem(), name, func(v ast.Node) { kv.Value = v }); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if seq, ok := n.(*ast.SequenceNode); ok {
			for i, v := range seq.Values {
				if err := s.walk(v, t.Elem(), orValue(field)+" item", func(v ast.Node) { seq.Values[i] = v }); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// merge walks the value of a merge key (<<: *a, or <<: [*a, *b]) as more
// of the mapping it is in, a t.
func (s *shapes) merge(v ast.Node, t reflect.Type) *Error {
	if r, _ := s.resolve(v); r != nil {
		if seq, ok := r.(*ast.SequenceNode); ok {
			for _, m := range seq.Values {
				if err := s.walk(m, t, "<<", nil); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return s.walk(v, t, "<<", nil)
}

var (
	bytesUnmarshalerType = reflect.TypeOf((*yaml.BytesUnmarshaler)(nil)).Elem()
)

// parsesItsText says whether go-yaml decodes a t by writing its value out
// as text (Duration, Rate: UnmarshalYAML([]byte); netsim's Radio,
// Addressing, Dist: UnmarshalText).
func parsesItsText(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(bytesUnmarshalerType) || p.Implements(textUnmarshalerType)
}

// detach gives the scalar a field parses from its text tokens of its own.
//
// To write a value out, go-yaml maps every token of the file from the
// first to the last, whatever the value: a file of 4,900 `wait: 1s` steps
// took 60 s and 8 GB to decode. A scalar whose tokens link to no others
// is written out at once. at is the node where it stands (the scalar n, an
// anchor of it, or an alias to it, which the scalar replaces).
func (s *shapes) detach(at, n ast.Node, set func(ast.Node)) {
	d := detached(n)
	if d == nil {
		return
	}
	switch a := at.(type) {
	case *ast.AnchorNode: // keep the anchor, for its aliases
		a.Value = d
	default:
		if set != nil {
			set(d)
		}
	}
}

// detached is a copy of scalar n with copies of its tokens that link to no
// others (a block scalar's two to each other), or nil.
func detached(n ast.Node) ast.Node {
	cp := func(tk *token.Token) *token.Token {
		if tk == nil {
			return nil
		}
		c := *tk
		c.Prev, c.Next = nil, nil
		return &c
	}
	switch n := n.(type) {
	case *ast.StringNode:
		c := *n
		c.Token = cp(n.Token)
		return &c
	case *ast.IntegerNode:
		c := *n
		c.Token = cp(n.Token)
		return &c
	case *ast.FloatNode:
		c := *n
		c.Token = cp(n.Token)
		return &c
	case *ast.BoolNode:
		c := *n
		c.Token = cp(n.Token)
		return &c
	case *ast.InfinityNode:
		c := *n
		c.Token = cp(n.Token)
		return &c
	case *ast.NanNode:
		c := *n
		c.Token = cp(n.Token)
		return &c
	case *ast.LiteralNode: // | or >, then the text
		if n.Value == nil || n.Start == nil || n.Value.Token == nil {
			return nil
		}
		c, v := *n, *n.Value
		c.Start, v.Token = cp(n.Start), cp(n.Value.Token)
		c.Start.Next, v.Token.Prev = v.Token, c.Start
		c.Value = &v
		return &c
	}
	return nil // null decodes to the zero value, without being written out
}

func orValue(field string) string {
	if field == "" {
		return "the value"
	}
	return field
}

// yamlFields maps the keys of a struct, its inline structs' included, to
// their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case strings.Contains(opts, "inline"):
			for k, v := range yamlFields(f.Type) {
				m[k] = v
			}
		case name != "":
			m[name] = f.Type
		default:
			m[strings.ToLower(f.Name)] = f.Type
		}
	}
	return m
}
