package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

type workflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]struct {
		RunsOn any `yaml:"runs-on"`
		Steps  []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func loadWorkflow(t *testing.T, name string) workflow {
	t.Helper()
	src, err := os.ReadFile("../../../.github/workflows/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(src, &w); err != nil {
		t.Fatalf("%s is not valid YAML: %v", name, err)
	}
	return w
}

// TestNightlyHILWorkflowHasEveryStep keeps the nightly hardware run whole:
// it runs where the boards are, builds the image with TinyGo, flashes every
// board of the inventory, runs the scenarios with the hw target, and keeps
// JUnit, timelines and captures.
func TestNightlyHILWorkflowHasEveryStep(t *testing.T) {
	w := loadWorkflow(t, "nightly-hil.yml")
	job, ok := w.Jobs["hil"]
	if !ok {
		t.Fatal("no hil job")
	}
	if labels, _ := job.RunsOn.([]any); len(labels) != 2 || labels[0] != "self-hosted" || labels[1] != "pico-lab" {
		t.Errorf("runs-on %v, want [self-hosted, pico-lab]", job.RunsOn)
	}
	var all strings.Builder
	for _, s := range job.Steps {
		all.WriteString(s.Uses + " " + s.Run + " " + s.With["path"] + "\n")
	}
	for _, want := range []string{
		"setup-tinygo", "hack/tinygo-build.sh", "hack/flash.sh --inventory", "run --target hw --inventory",
		"--junit", "--report", "upload-artifact", "junit.xml", "timelines/", "captures/",
	} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("the nightly workflow has no step with %q", want)
		}
	}
}

func TestCIWorkflowBuildsTheFirmwareWithTinyGo(t *testing.T) {
	w := loadWorkflow(t, "ci.yml")
	var firmware, test bool
	for _, job := range w.Jobs {
		for _, s := range job.Steps {
			firmware = firmware || strings.Contains(s.Run, "hack/tinygo-build.sh")
			test = test || strings.Contains(s.Run, "make test")
		}
	}
	if !firmware || !test {
		t.Fatalf("ci.yml: builds the TinyGo firmware %v, runs make test %v", firmware, test)
	}
}

// TestWorkflowsUseATinyGoThatAcceptsGo126: TinyGo 0.40 refuses Go 1.26
// ("requires go version 1.19 through 1.25"); both workflows build with the
// release the README and hack/tinygo-build.sh name, and CI keeps the UF2.
func TestWorkflowsUseATinyGoThatAcceptsGo126(t *testing.T) {
	for _, name := range []string{"ci.yml", "nightly-hil.yml"} {
		if v := loadWorkflow(t, name).Env["TINYGO_VERSION"]; v != "0.41.1" {
			t.Errorf("%s: TINYGO_VERSION %q, want 0.41.1", name, v)
		}
	}
	var upload bool
	for _, job := range loadWorkflow(t, "ci.yml").Jobs {
		for _, s := range job.Steps {
			upload = upload || (strings.HasPrefix(s.Uses, "actions/upload-artifact") && strings.HasSuffix(s.With["path"], ".uf2"))
		}
	}
	if !upload {
		t.Error("ci.yml does not upload the UF2")
	}
}

// TestWorkflowsAreActionlintClean runs actionlint at the version go.mod
// pins (go tool actionlint), with shellcheck for the run: scripts when it is
// installed (make tools installs it; CI must have it).
func TestWorkflowsAreActionlintClean(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("shellcheck is missing (make tools installs it): actionlint would skip the run: scripts")
		}
		t.Log("shellcheck is missing (make tools installs it): the run: scripts are not checked")
	}
	cmd := exec.Command("go", "tool", "actionlint", "-no-color")
	cmd.Dir = "../../.."
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("actionlint: %v\n%s", err, out)
	}
}
