package control

import "strconv"

// Enc appends one JSON document in Value.Append's layout (Python's
// json.dumps) without building Values first: for the large documents a
// board writes often (its state), whose Value tree would cost a Pico W
// tens of kilobytes of heap each time. Keys and values alternate as JSON
// has them; Enc puts the separators in.
//
//	var e control.Enc
//	e.Open('{'); e.Key("pins"); e.Open('['); e.Int(2); e.Close(']'); e.Close('}')
//	// e.B is {"pins": [2]}
type Enc struct {
	B     []byte
	comma bool // a value came last: the next key or item needs ", "
}

func (e *Enc) sep() {
	if e.comma {
		e.B = append(e.B, ", "...)
	}
}

// Open starts an object ('{') or an array ('[').
func (e *Enc) Open(c byte) { e.sep(); e.B = append(e.B, c); e.comma = false }

// Close ends it ('}' or ']').
func (e *Enc) Close(c byte) { e.B = append(e.B, c); e.comma = true }

// Key writes an object's key; its value comes next.
func (e *Enc) Key(k string) {
	e.sep()
	e.B = appendString(e.B, k)
	e.B = append(e.B, ": "...)
	e.comma = false
}

// Str writes a string.
func (e *Enc) Str(s string) { e.sep(); e.B = appendString(e.B, s); e.comma = true }

// Int writes an integer.
func (e *Enc) Int(n int64) { e.sep(); e.B = strconv.AppendInt(e.B, n, 10); e.comma = true }

// Float writes a number as Float's Value does.
func (e *Enc) Float(f float64) {
	e.sep()
	e.B = strconv.AppendFloat(e.B, f, 'g', -1, 64)
	e.comma = true
}

// Bool writes true or false.
func (e *Enc) Bool(b bool) { e.sep(); e.B = Boolean(b).Append(e.B); e.comma = true }

// Value writes v.
func (e *Enc) Value(v Value) { e.sep(); e.B = v.Append(e.B); e.comma = true }

// Raw is a Value that is already JSON (an Enc's document, say): Append
// writes it as it is. Parse never makes one.
func Raw(json []byte) Value { return Value{Kind: RawJSON, Str: string(json)} }
