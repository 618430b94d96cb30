package scenario

import (
	"bytes"
	"os"
	"testing"
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
