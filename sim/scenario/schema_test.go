package scenario

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The committed schema must be what `picosim schema` prints now.
func TestCommittedSchemaIsCurrent(t *testing.T) {
	want, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../scenarios/schema.json")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("scenarios/schema.json is stale: run `go run ./sim/cmd/picosim schema > scenarios/schema.json`")
	}
}

// Every bundled scenario is valid against the schema by an independent
// validator (santhosh-tekuri/jsonschema, draft 2020-12), and the schema
// refuses what the loader refuses where a schema can say it: a step with
// two actions or none, a forge type nobody knows, a misspelt key.
func TestBundledScenariosMeetTheSchema(t *testing.T) {
	raw, err := os.ReadFile("../../scenarios/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	asJSON := func(src []byte) any {
		t.Helper()
		var v any
		if err := yaml.Unmarshal(src, &v); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(v) // through JSON: the validator's own types
		if err != nil {
			t.Fatal(err)
		}
		v, err = jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	files, _ := filepath.Glob("../../scenarios/*.yaml")
	if len(files) < 10 {
		t.Fatalf("%d bundled scenarios", len(files))
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(asJSON(src)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for what, src := range map[string]string{
		"two actions": "name: x\ntopology: {boards: 2}\nsteps:\n  - power_on: pico1\n    heal: true\n",
		"no action":   "name: x\ntopology: {boards: 2}\nsteps:\n  - at: 1s\n",
		"forge type":  "name: x\ntopology: {boards: 2}\nsteps:\n  - forge: {type: bogus}\n",
		"misspelt":    "name: x\ntopology: {boards: 2, netwrk: {}}\n",
	} {
		if schema.Validate(asJSON([]byte(src))) == nil {
			t.Errorf("the schema accepts %s", what)
		}
	}
}
