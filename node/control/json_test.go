package control

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseKeepsOrderAndLiterals(t *testing.T) {
	v, err := Parse([]byte(` {"action": "write_pin", "pin": 2, "value": 1, "timeout": 5.0, "x": [true, null, -1e3], "s": "a\"\u00e9\ud83d\ude00"} `))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 5.0, "x": [true, null, -1e3], "s": "a\"\u00e9\ud83d\ude00"}`
	if got := v.String(); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	if s, _ := v.Get("s"); s.Str != "a\"é😀" {
		t.Fatalf("decoded string %q", s.Str)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `01`, `1.`, `-`, `1e`, `"abc`, `"\x"`, "\"a\x01\"", `{} {}`, `tru`, `nul`, `{"a":1 "b":2}`, `"\u12"`,
		strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want a syntax error", in, err)
		}
	}
}

func TestRepeatedKeyKeepsLastValueInFirstPlace(t *testing.T) {
	v, _ := Parse([]byte(`{"a": 1, "b": 2, "a": 3}`))
	if got := v.String(); got != `{"a": 3, "b": 2}` {
		t.Fatal(got)
	}
}

// FuzzParse: Parse agrees with encoding/json on what is valid (within the
// depth limit), never panics, and its output parses back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"action":"ping"}`, `[1,2,{"a":null}]`, `"\ud83d\ude00"`, `-0.5e-3`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Parse(b)
		if strings.Count(string(b), "[")+strings.Count(string(b), "{") > maxDepth {
			return // deeper inputs may be valid JSON that we refuse
		}
		if valid := json.Valid(b); valid != (err == nil) {
			t.Fatalf("Parse(%q) err=%v, encoding/json valid=%v", b, err, valid)
		}
		if err != nil {
			return
		}
		out := v.Append(nil)
		again, err := Parse(out)
		if err != nil || again.String() != string(out) {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
	})
}
