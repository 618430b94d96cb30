package firmware_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// These specs build the Pico W image with the real TinyGo, through the
// script `make firmware` runs, so that a compile error or a broken budget in
// firmware/pico-w fails make test: the adapter is TinyGo-only, and nothing
// else compiles it. They need TinyGo 0.41 (`make tools` installs it from
// ../shared/toolchains on these machines); without one they are skipped,
// except in CI, where they fail.

var buildScript, _ = filepath.Abs("../hack/tinygo-build.sh")

// tinygo returns the TinyGo the build script uses, or skips.
func tinygo(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the TinyGo build takes half a minute")
	}
	out, err := exec.Command(buildScript, "--toolchain", "--no-install").CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI has no TinyGo (make tools installs it): %s", out)
		}
		t.Skipf("no TinyGo here (make tools installs it): %s", bytes.TrimSpace(out))
	}
}

// build runs the build script; it returns its output and exit status.
func build(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(buildScript, append([]string{"--no-install"}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

var sizeRow = regexp.MustCompile(`(?m)^\s+(flash|static RAM)\s+([\d,]+) bytes\s+budget\s+([\d,]+) \(\s*\d+%\)\s+RP2040\s+[\d,]+\s+(ok|OVER BUDGET)$`)

func number(s string) int {
	n, _ := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
	return n
}

// uf2Payload checks a UF2 file block by block (magics, the RP2040 family,
// consecutive 256-byte blocks) and returns the flash image it carries.
func uf2Payload(t *testing.T, uf2 []byte) []byte {
	t.Helper()
	if len(uf2) == 0 || len(uf2)%512 != 0 {
		t.Fatalf("a UF2 file is whole 512-byte blocks; this one is %d bytes", len(uf2))
	}
	var image []byte
	var next uint32
	le := binary.LittleEndian
	for i := 0; i < len(uf2); i += 512 {
		b := uf2[i : i+512]
		if le.Uint32(b[0:]) != 0x0a324655 || le.Uint32(b[4:]) != 0x9e5d5157 || le.Uint32(b[508:]) != 0x0ab16f30 {
			t.Fatalf("block %d: bad UF2 magic", i/512)
		}
		if flags := le.Uint32(b[8:]); flags&0x2000 == 0 || le.Uint32(b[28:]) != 0xe48bff56 {
			t.Fatalf("block %d: not tagged for the RP2040 family (flags %#x, family %#x)", i/512, flags, le.Uint32(b[28:]))
		}
		addr, size := le.Uint32(b[12:]), le.Uint32(b[16:])
		if i == 0 {
			if addr != 0x10000000 {
				t.Fatalf("the image starts at %#x, not at the RP2040's flash (0x10000000)", addr)
			}
			next = addr
		}
		if addr != next || size != 256 || le.Uint32(b[20:]) != uint32(i/512) || le.Uint32(b[24:]) != uint32(len(uf2)/512) {
			t.Fatalf("block %d: address %#x (want %#x), size %d, number %d of %d", i/512, addr, next, size, le.Uint32(b[20:]), le.Uint32(b[24:]))
		}
		next += size
		image = append(image, b[32:32+size]...)
	}
	return image
}

func TestPicoWImageBuildsWithinItsBudgets(t *testing.T) {
	tinygo(t)
	uf2 := filepath.Join(t.TempDir(), "fw.uf2")
	out, code := build(t, "--no-heap", "--ssid", "bench lab 7", "--password", "pass word", "-o", uf2)
	if code != 0 {
		t.Fatalf("make firmware's build failed (exit %d):\n%s", code, out)
	}
	t.Logf("\n%s", out)
	rows := sizeRow.FindAllStringSubmatch(out, -1)
	if len(rows) != 2 {
		t.Fatalf("the size table has %d rows, want flash and static RAM:\n%s", len(rows), out)
	}
	for _, r := range rows {
		used, budget := number(r[2]), number(r[3])
		if r[4] != "ok" || used > budget || used == 0 {
			t.Errorf("%s: %d bytes against a budget of %d (%s)", r[1], used, budget, r[4])
		}
	}
	if rows[0][3] != "1,048,576" || rows[1][3] != "32,768" {
		t.Errorf("budgets %s and %s, want 1 MiB of flash and 32 KiB of static RAM", rows[0][3], rows[1][3])
	}
	raw, err := os.ReadFile(uf2)
	if err != nil {
		t.Fatal(err)
	}
	image := uf2Payload(t, raw)
	if len(image) < number(rows[0][2]) {
		t.Errorf("the UF2 carries %d bytes, the build reported %s of flash", len(image), rows[0][2])
	}
	for _, want := range []string{"bench lab 7", "pass word", "get_state", "config/config_wlan.json"} {
		if !bytes.Contains(image, []byte(want)) {
			t.Errorf("the image does not hold %q", want)
		}
	}
}

// copyModule copies firmware/pico-w to a temporary folder, where a spec may
// break it.
func copyModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join("pico-w", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPicoWBuildFailsOnAnAPIErrorOfTheDriver(t *testing.T) {
	tinygo(t)
	dir := copyModule(t)
	// The field the adapter once used, renamed in cyw43439 v0.2.0: drift of
	// this kind must never land again.
	bad := "//go:build tinygo && rp2040\n\npackage main\n\nimport \"github.com/soypat/cyw43439/examples/cywnet\"\n\nvar _ = cywnet.StackConfig{MaxTCPPorts: 2}\n"
	if err := os.WriteFile(filepath.Join(dir, "drift.go"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := build(t, "--no-heap", "--dir", dir, "-o", filepath.Join(dir, "x.uf2"))
	if code != 1 || !strings.Contains(out, "unknown field MaxTCPPorts") || !strings.Contains(out, "the build failed") {
		t.Fatalf("exit %d, want 1 with the compiler's error:\n%s", code, out)
	}
}

func TestPicoWBuildFailsWhenTheModuleFilesAreNotTidy(t *testing.T) {
	tinygo(t)
	dir := copyModule(t)
	mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	untidy := strings.Replace(string(mod), "\tgithub.com/soypat/lneto v0.4.0\n", "", 1)
	if untidy == string(mod) {
		t.Fatal("go.mod does not require lneto v0.4.0 directly")
	}
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte(untidy), 0o644)
	out, code := build(t, "--no-heap", "--dir", dir, "-o", filepath.Join(dir, "x.uf2"))
	if code != 1 || !strings.Contains(out, "is not what go mod tidy makes of it") {
		t.Fatalf("exit %d, want 1 for an untidy go.mod:\n%s", code, out)
	}
}

func TestPicoWBuildFailsOverBudget(t *testing.T) {
	tinygo(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644)
	out, code := build(t, "--no-heap", "--dir", dir, "--max-flash", "1024", "-o", filepath.Join(dir, "x.uf2"))
	if code != 1 || !regexp.MustCompile(`flash .*OVER BUDGET`).MatchString(out) || !strings.Contains(out, "a budget is broken") {
		t.Fatalf("exit %d, want 1 with flash over its budget of 1,024 bytes:\n%s", code, out)
	}
	if !regexp.MustCompile(`static RAM .* ok`).MatchString(out) {
		t.Fatalf("static RAM should be within budget:\n%s", out)
	}
}
