package scenario

import (
	_ "embed"
	"encoding"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/targets"
)

// formatSource is the Go source of the format's types, whose comments are
// the schema's descriptions: written once, for readers of Go and editors
// of YAML alike.
//
//go:embed format.go
var formatSource string

// docs maps "Type" and "Type.Field" to their doc comments in format.go.
var docs = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "format.go", formatSource, parser.ParseComments)
	if err != nil {
		return out
	}
	clean := func(g *ast.CommentGroup) string { return strings.Join(strings.Fields(g.Text()), " ") }
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, sp := range gd.Specs {
			ts := sp.(*ast.TypeSpec)
			if doc := ts.Doc; doc != nil || gd.Doc != nil {
				if doc == nil {
					doc = gd.Doc
				}
				out[ts.Name.Name] = clean(doc)
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, fld := range st.Fields.List {
				doc := fld.Doc
				if doc == nil {
					doc = fld.Comment
				}
				for _, n := range fld.Names {
					if doc != nil {
						out[ts.Name.Name+"."+n.Name] = clean(doc)
					}
				}
			}
		}
	}
	return out
})

// enums are the fixed words of string fields the checks hold them to;
// patterns the shapes of others; defaults what a field left out means.
var (
	enums = map[string][]string{
		"Forge.Type":       forgeTypes,
		"Attack.Kind":      sim.AttackKinds,
		"Network.Mode":     networkModes,
		"App.Start":        Apps,
		"App.Stop":         Apps,
		"AppRate.App":      Apps,
		"Counter.Name":     targets.CounterNames,
		"RadioFault.Fault": radioFaults,
	}
	patterns = map[string]*regexp.Regexp{
		"Expect.MasterWas":   roleName,
		"Control.Controller": hostName,
	}
	defaults = map[string]any{
		"Scenario.Timeout":      "10m",
		"Topology.NamePattern":  "pico%d",
		"Topology.Heartbeat":    "1s",
		"Topology.MissLimit":    3,
		"Network.Mode":          "router",
		"Network.Radio":         "picow",
		"Network.Addressing":    "sticky",
		"Link.Distribution":     "uniform",
		"Hello.Within":          "2s",
		"Control.Controller":    "laptop",
		"Control.Timeout":       "10s",
		"Control.Retries":       0,
		"Forge.Count":           1,
		"Forge.Every":           "1s",
		"Forge.Bytes":           32,
		"Attack.For":            "30s",
		"Attack.Connections":    4,
		"Attack.Bytes":          1 << 20,
		"RadioSpec.WakeOnWLAN":  true,
		"Topology.WiFiWatchdog": true,
	}
)

// Schema returns the JSON Schema of the scenario format, generated from the
// Go types, for editors' YAML extensions (scenarios/schema.json).
func Schema() ([]byte, error) {
	s := schemaOf(reflect.TypeOf(Scenario{}))
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["title"] = "picosim scenario"
	s["required"] = []string{"name", "topology"}
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}

var (
	durationType = reflect.TypeOf(Duration(0))
	rateType     = reflect.TypeOf(Rate(0))
	boardsType   = reflect.TypeOf(Boards{})
	targetsType  = reflect.TypeOf(Targets{})

	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case boardsType:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "integer", "minimum": 1},
			map[string]any{"type": "array", "items": schemaOf(reflect.TypeOf(BoardSpec{}))},
		}, "description": "a count, or a list of {name, pins}"}
	case targetsType:
		kinds := map[string]any{"enum": targets.Kinds}
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "array", "items": kinds},
			map[string]any{"type": "object", "propertyNames": kinds, "additionalProperties": schemaOf(reflect.TypeOf(TargetSettings{}))},
		}, "description": "where the scenario runs: [sim, emulated, hw, rp2040], or a map of each to its timings"}
	case durationType:
		return map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, "description": "a duration: 1.5s, 200ms, 10m"}
	case rateType:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "number", "minimum": 0, "maximum": 1},
			map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)?%$`},
		}, "description": "a rate: 10% or 0.1"}
	}
	// A setting that parses its own words (netsim's radio, addressing,
	// distribution) is an enum of them.
	if v, ok := reflect.Zero(t).Interface().(interface{ Values() []string }); ok && reflect.PointerTo(t).Implements(textUnmarshaler) {
		return map[string]any{"enum": v.Values()}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		if t.Key().Kind() == reflect.Int {
			return map[string]any{"type": "object", "propertyNames": map[string]any{"pattern": "^[0-9]+$"}, "additionalProperties": schemaOf(t.Elem())}
		}
		if t.Elem().Kind() == reflect.Interface {
			return map[string]any{"type": "object"}
		}
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		addFields(t, props)
		out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if d := docs()[t.Name()]; d != "" {
			out["description"] = d
		}
		if t == reflect.TypeOf(Step{}) {
			// Exactly one action a step: each alternative requires one of
			// them, and oneOf fails on none and on two.
			var one []any
			for _, a := range stepActions {
				one = append(one, map[string]any{"required": []string{a}})
			}
			out["oneOf"] = one
		}
		return out
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case name == "-" || !f.IsExported():
		case strings.Contains(opts, "inline"):
			addFields(f.Type, props)
		case name != "":
			p := schemaOf(f.Type)
			key := t.Name() + "." + f.Name
			if e := enums[key]; e != nil {
				p = map[string]any{"enum": e}
			}
			if re := patterns[key]; re != nil {
				p["pattern"] = re.String()
			}
			if d, ok := defaults[key]; ok {
				p["default"] = d
			}
			if d := docs()[t.Name()+"."+f.Name]; d != "" {
				p["description"] = d
			}
			props[name] = p
		}
	}
}
