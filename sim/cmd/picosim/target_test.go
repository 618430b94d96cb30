package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picosim/picosim/sim/targets"
)

func TestRunSaysWhyAScenarioOrAStepIsSkipped(t *testing.T) {
	dir := t.TempDir()
	only := filepath.Join(dir, "only-emulated.yaml")
	os.WriteFile(only, []byte("name: only emulated\ntargets: [emulated]\ntopology:\n  boards: 2\nsteps:\n  - expect: {eventually: 10s, members_agree: true}\n"), 0o644)
	code, out, _ := picosim(t, "run", "--junit", filepath.Join(dir, "r.xml"), only)
	if code != 0 || !strings.Contains(out, "skip only emulated") || !strings.Contains(out, "runs on emulated only (add sim to its targets") ||
		!strings.Contains(out, "0 passed, 0 failed, 0 not judged, 1 skipped") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if xml, _ := os.ReadFile(filepath.Join(dir, "r.xml")); !strings.Contains(string(xml), `<skipped message="the scenario runs on emulated only`) {
		t.Fatalf("junit:\n%s", xml)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--target", "hw", only}, "--target hw needs --inventory FILE"},
		{[]string{"run", "--target", "board", only}, `--target "board": one of sim, emulated, hw, rp2040`},
		{[]string{"run", "--target", "rp2040", "--inventory", "lab.yaml", only}, "--inventory goes with --target hw"},
		{[]string{"run", "--inventory", "lab.yaml", only}, "--inventory goes with --target hw"},
		{[]string{"run", "--target", "hw", "--inventory", filepath.Join(dir, "none.yaml"), only}, "no such file"},
	} {
		if code, _, errOut := picosim(t, c.args...); code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s", c.args, code, c.want, errOut)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: bad\ntargets: [sim, board]\ntopology:\n  boards: 2\n"), 0o644)
	if code, _, errOut := picosim(t, "validate", bad); code != 2 || !strings.Contains(errOut, `no target "board": one of [sim emulated hw rp2040]`) {
		t.Fatalf("validate: exit %d\n%s", code, errOut)
	}
}

// TestInterruptedEmulatedRunLeavesNothingBehind interrupts picosim in the
// middle of an emulated scenario, as Ctrl-C does: it must exit 130 and take
// its board processes and network namespaces with it.
func TestInterruptedEmulatedRunLeavesNothingBehind(t *testing.T) {
	if err := targets.CanEmulate(); err != nil {
		t.Skip("emulated boards cannot run here: " + err.Error())
	}
	exe := filepath.Join(t.TempDir(), "picosim")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(exe, "run", "--target", "emulated", "../../../scenarios/master-failure.yaml")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("%s%d-", targets.NamespacePrefix, cmd.Process.Pid)
	var spaces []string
	var boards []int
	for deadline := time.Now().Add(20 * time.Second); len(boards) < 5; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no emulated boards after 20s (namespaces %v, processes %v)\n%s", spaces, boards, out)
		}
		spaces, boards = namespacesAndProcesses(prefix)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want 130\n%s", err, out)
	}
	if left, procs := namespacesAndProcesses(prefix); len(left) > 0 || len(procs) > 0 {
		t.Fatalf("left behind: namespaces %v, processes %v", left, procs)
	}
	for _, pid := range boards {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("board process %d is still running", pid)
		}
	}
}

// namespacesAndProcesses lists the named namespaces that start with prefix,
// and the processes that run in them.
func namespacesAndProcesses(prefix string) ([]string, []int) {
	entries, _ := os.ReadDir("/var/run/netns")
	inodes := map[uint64]bool{}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
			if info, err := os.Stat("/var/run/netns/" + e.Name()); err == nil {
				inodes[info.Sys().(*syscall.Stat_t).Ino] = true
			}
		}
	}
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if info, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && inodes[info.Sys().(*syscall.Stat_t).Ino] {
			pids = append(pids, pid)
		}
	}
	return names, pids
}

func TestInventoryRunsALabsPowerAndFlashCommands(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	uf2 := filepath.Join(dir, "fw.uf2")
	os.WriteFile(uf2, []byte("UF2"), 0o644)
	inv := filepath.Join(dir, "lab.yaml")
	os.WriteFile(inv, []byte(`boards:
  - name: pico1
    address: 10.0.0.2
    power_off: echo "$PICOSIM_BOARD off" >> `+log+`
    power_on: echo "$PICOSIM_BOARD on at $PICOSIM_ADDRESS" >> `+log+`
    flash: echo "$PICOSIM_BOARD flash $(cat $PICOSIM_UF2)" >> `+log+`
  - name: pico2
    address: 10.0.0.3
    power_off: "false"
    power_on: "true"
`), 0o644)
	if code, out, _ := picosim(t, "inventory", inv); code != 0 || !strings.Contains(out, "pico1    10.0.0.2") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, _, errOut := picosim(t, "inventory", "--run", "power_cycle", "--board", "pico1", inv); code != 0 {
		t.Fatalf("power_cycle: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := picosim(t, "inventory", "--run", "flash", "--uf2", uf2, "--board", "pico1", inv); code != 0 {
		t.Fatalf("flash: exit %d\n%s", code, errOut)
	}
	got, _ := os.ReadFile(log)
	if string(got) != "pico1 off\npico1 on at 10.0.0.2\npico1 flash UF2\n" {
		t.Fatalf("commands ran as:\n%s", got)
	}
	if code, _, errOut := picosim(t, "inventory", "--run", "power_off", inv); code != 1 || !strings.Contains(errOut, "pico2: false") {
		t.Fatalf("a failing command: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := picosim(t, "inventory", "--run", "flash", inv); code != 2 || !strings.Contains(errOut, "needs --uf2") {
		t.Fatalf("flash without an image: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := picosim(t, "inventory", "--run", "power_on", "--board", "pico9", inv); code != 2 || !strings.Contains(errOut, `no board "pico9"`) {
		t.Fatalf("an unknown board: exit %d\n%s", code, errOut)
	}
}

func TestHackScriptsHaveHelpAndRefuseBadUsage(t *testing.T) {
	for _, s := range []string{"tinygo-build.sh", "flash.sh", "power.sh"} {
		script := "../../../hack/" + s
		out, err := exec.Command(script, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Usage: hack/"+s) || !strings.Contains(string(out), "Examples:") {
			t.Errorf("%s --help: %v\n%s", s, err, out)
		}
		err = exec.Command(script, "--bogus").Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("%s --bogus: %v, want exit 2", s, err)
		}
	}
}
