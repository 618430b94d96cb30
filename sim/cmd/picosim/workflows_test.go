package main

import (
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

type workflow struct {
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
