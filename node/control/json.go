package control

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The control protocol needs JSON objects whose key order survives a round
// trip (a reply echoes the request in its order, as Python's dict does) and a
// codec TinyGo builds without reflection. Value is that: a parsed JSON value
// with objects as ordered lists of fields.

// Kind is the type of a JSON value.
type Kind uint8

// JSON kinds.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
	// RawJSON is a value already encoded (Raw): Append copies Str.
	RawJSON
)

func (k Kind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object", "raw JSON"}[k]
}

// Value is one JSON value. Numbers keep the literal they were written with, so
// that an echoed request shows the client's own numbers.
type Value struct {
	Kind   Kind
	Bool   bool
	Str    string  // String: the text; Number: the literal
	Num    float64 // Number
	Items  []Value // Array
	Fields []Field // Object, in order
}

// Field is one key and value of an object.
type Field struct {
	Key string
	Val Value
}

// Constructors for building replies.
func Str(s string) Value   { return Value{Kind: String, Str: s} }
func Boolean(b bool) Value { return Value{Kind: Bool, Bool: b} }
func Int(n int64) Value {
	return Value{Kind: Number, Num: float64(n), Str: strconv.FormatInt(n, 10)}
}
func Float(f float64) Value {
	return Value{Kind: Number, Num: f, Str: strconv.FormatFloat(f, 'g', -1, 64)}
}
func Obj(fields ...Field) Value { return Value{Kind: Object, Fields: fields} }
func List(items ...Value) Value { return Value{Kind: Array, Items: items} }

// Get returns the value of key in an object.
func (v Value) Get(key string) (Value, bool) {
	for _, f := range v.Fields {
		if f.Key == key {
			return f.Val, true
		}
	}
	return Value{}, false
}

// Set replaces key's value in an object, or appends the field.
func (v *Value) Set(key string, val Value) {
	for i := range v.Fields {
		if v.Fields[i].Key == key {
			v.Fields[i].Val = val
			return
		}
	}
	v.Fields = append(v.Fields, Field{key, val})
}

// Clone copies an object's field list, so that Set on the copy leaves v alone.
func (v Value) Clone() Value {
	v.Fields = append([]Field(nil), v.Fields...)
	return v
}

// maxDepth bounds nesting, so that a hostile "[[[[..." cannot exhaust a
// board's stack.
const maxDepth = 32

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("invalid JSON")

// Parse decodes one JSON value; only whitespace may follow it.
func Parse(b []byte) (Value, error) {
	p := parser{b: b}
	v := p.value(0)
	p.space()
	if p.err == nil && p.i < len(p.b) {
		p.fail("extra data after the value")
	}
	if p.err != nil {
		return Value{}, p.err
	}
	return v, nil
}

type parser struct {
	b   []byte
	i   int
	err error
}

type syntaxError struct {
	msg string
	at  int
}

func (e *syntaxError) Error() string {
	return "invalid JSON: " + e.msg + " at byte " + strconv.Itoa(e.at)
}
func (e *syntaxError) Unwrap() error { return ErrSyntax }

func (p *parser) fail(msg string) {
	if p.err == nil {
		p.err = &syntaxError{msg, p.i}
	}
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) Value {
	if depth > maxDepth {
		p.fail("nested too deeply")
		return Value{}
	}
	p.space()
	if p.i >= len(p.b) {
		p.fail("unexpected end")
		return Value{}
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return Value{Kind: String, Str: p.str()}
	case c == 't':
		p.word("true")
		return Value{Kind: Bool, Bool: true}
	case c == 'f':
		p.word("false")
		return Value{Kind: Bool}
	case c == 'n':
		p.word("null")
		return Value{}
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	p.fail("unexpected character " + strconv.QuoteRune(rune(p.b[p.i])))
	return Value{}
}

func (p *parser) word(w string) {
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return
	}
	p.fail("unexpected literal")
}

func (p *parser) object(depth int) Value {
	v := Value{Kind: Object}
	p.i++ // {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return v
	}
	for p.err == nil {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			p.fail("expected a quoted key")
			break
		}
		key := p.str()
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			p.fail("expected ':'")
			break
		}
		p.i++
		val := p.value(depth + 1)
		v.Set(key, val) // a repeated key keeps its first place, last value, as in Python
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.b) && p.b[p.i] == '}' {
			p.i++
			return v
		}
		p.fail("expected ',' or '}'")
	}
	return Value{}
}

func (p *parser) array(depth int) Value {
	v := Value{Kind: Array}
	p.i++ // [
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return v
	}
	for p.err == nil {
		v.Items = append(v.Items, p.value(depth+1))
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return v
		}
		p.fail("expected ',' or ']'")
	}
	return Value{}
}

func (p *parser) number() Value {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	if digits() == 0 {
		p.fail("malformed number")
		return Value{}
	}
	if p.b[intStart] == '0' && p.i-intStart > 1 {
		p.fail("number with a leading zero")
		return Value{}
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			p.fail("malformed number")
			return Value{}
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			p.fail("malformed number")
			return Value{}
		}
	}
	lit := string(p.b[start:p.i])
	// Past float64's range ParseFloat gives ±Inf: still valid JSON, and the
	// literal is what gets echoed.
	f, _ := strconv.ParseFloat(lit, 64)
	return Value{Kind: Number, Num: f, Str: lit}
}

// str reads a quoted string at p.i.
func (p *parser) str() string {
	p.i++ // "
	var out []byte
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out)
		case c < 0x20:
			p.fail("control character in string")
			return ""
		case c == '\\':
			if p.i+1 >= len(p.b) {
				p.fail("unterminated escape")
				return ""
			}
			p.i++
			switch e := p.b[p.i]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := p.hex4()
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if p.i+2 < len(p.b) && p.b[p.i+1] == '\\' && p.b[p.i+2] == 'u' {
						p.i += 2
						r2 = p.hex4()
					}
					r = utf16.DecodeRune(r, r2)
				}
				out = utf8.AppendRune(out, r)
			default:
				p.fail("unknown escape")
				return ""
			}
			p.i++
		default:
			out = append(out, c)
			p.i++
		}
	}
	p.fail("unterminated string")
	return ""
}

// hex4 reads the XXXX of \uXXXX, leaving p.i on its last digit.
func (p *parser) hex4() rune {
	if p.i+4 >= len(p.b) {
		p.fail("short \\u escape")
		return utf8.RuneError
	}
	v, err := strconv.ParseUint(string(p.b[p.i+1:p.i+5]), 16, 32)
	if err != nil {
		p.fail("bad \\u escape")
		return utf8.RuneError
	}
	p.i += 4
	return rune(v)
}

// Append encodes v as Python's json.dumps does by default: ", " and ": "
// separators, non-ASCII escaped as \uXXXX.
func (v Value) Append(b []byte) []byte {
	switch v.Kind {
	case Null:
		return append(b, "null"...)
	case Bool:
		if v.Bool {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case Number:
		if v.Str != "" {
			return append(b, v.Str...)
		}
		return strconv.AppendFloat(b, v.Num, 'g', -1, 64)
	case String:
		return appendString(b, v.Str)
	case RawJSON:
		return append(b, v.Str...)
	case Array:
		b = append(b, '[')
		for i, it := range v.Items {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = it.Append(b)
		}
		return append(b, ']')
	case Object:
		b = append(b, '{')
		for i, f := range v.Fields {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendString(b, f.Key)
			b = append(b, ": "...)
			b = f.Val.Append(b)
		}
		return append(b, '}')
	}
	return b
}

func (v Value) String() string { return string(v.Append(nil)) }

const hexDigits = "0123456789abcdef"

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, '\\', '"')
		case r == '\\':
			b = append(b, '\\', '\\')
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20 || r > 0x7f:
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				b = appendU(b, r1)
				b = appendU(b, r2)
			} else {
				b = appendU(b, r)
			}
		default:
			b = append(b, byte(r))
		}
	}
	return append(b, '"')
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}
