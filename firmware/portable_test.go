package firmware_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinygoStdlib lists the standard packages the portable code may import:
// those https://tinygo.org/docs/reference/lang-support/stdlib/ marks
// "importable" that also work on a microcontroller with no operating system
// (os, net and syscall are importable there but have nothing behind them on
// a Pico W; encoding/json and fmt work but cost flash and RAM, so the cores
// write their own). Add a package only after checking that table.
var tinygoStdlib = []string{
	"bytes", "cmp", "compress/flate", "compress/zlib", "container/heap", "container/list",
	"encoding/base64", "encoding/binary", "encoding/hex", "errors", "hash/crc32", "io", "iter",
	"maps", "math", "math/bits", "math/rand/v2", "slices", "sort", "strconv", "strings",
	"sync", "sync/atomic", "time", "unicode", "unicode/utf16", "unicode/utf8",
}

// portable are the packages a Pico W runs: the cores and the firmware
// program (its adapters, firmware/host and firmware/pico-w, are not).
var portable = []string{"github.com/picosim/picosim/node/...", "github.com/picosim/picosim/firmware"}

// TestPortableCodeImportsOnlyWhatTinyGoSupports keeps node/ and firmware/
// buildable with TinyGo for the Pico W: standard packages from the list
// above, and of this module only each other.
func TestPortableCodeImportsOnlyWhatTinyGoSupports(t *testing.T) {
	args := append([]string{"list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`}, portable...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			switch {
			case strings.HasPrefix(imp, "github.com/picosim/picosim/node"), imp == "github.com/picosim/picosim/firmware":
			case strings.Contains(imp, "."):
				t.Errorf("%s imports %s: only node/ and firmware of this module, nothing outside", fields[0], imp)
			case !slices.Contains(tinygoStdlib, imp):
				t.Errorf("%s imports %s, which is not on the list of packages TinyGo supports on a Pico W", fields[0], imp)
			}
		}
	}
}

// TestPortableCodeStartsNoGoroutinesAndReadsNoClock keeps the cores
// sans-I/O: time comes in as an argument, and the caller owns the loop.
func TestPortableCodeStartsNoGoroutinesAndReadsNoClock(t *testing.T) {
	out, err := exec.Command("go", append([]string{"list", "-f", "{{.Dir}}"}, portable...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	clock := []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}
	for _, dir := range strings.Fields(string(out)) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s: starts a goroutine", fset.Position(n.Pos()))
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && slices.Contains(clock, n.Sel.Name) {
						t.Errorf("%s: reads the clock (time.%s)", fset.Position(n.Pos()), n.Sel.Name)
					}
				}
				return true
			})
		}
	}
}
