package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// BaselineFile is the baseline committed with the code, relative to this
// package's directory (where go test runs): re-measured with
// picosim bench --save-baseline sim/bench/baseline.json (make bench-baseline).
const BaselineFile = "baseline.json"

// baselineFormat is the version of the file's layout, so that a file of
// another layout is refused rather than misread.
const baselineFormat = 1

// Baseline is a stored run of picosim bench: its figures and what the
// reader needs to judge them by (commit, date, load, cores).
type Baseline struct {
	Format     int      `json:"format"`
	Commit     string   `json:"commit"`
	Date       string   `json:"date"`
	Go         string   `json:"go"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	Load       string   `json:"load"` // /proc/loadavg's 1, 5 and 15 minutes, at the start
	Figures    []Stored `json:"figures"`
	byKey      map[string]float64
}

// Stored is a figure in a baseline file. Label and unit are for whoever
// reads the file; only the key and the value are compared.
type Stored struct {
	Key   string  `json:"key"`
	Label string  `json:"label"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// NewBaseline records figures with the commit (Commit if commit is ""),
// the date, the Go version, GOMAXPROCS and the load.
func NewBaseline(figs []Figure, commit, load string) *Baseline {
	if commit == "" {
		commit = Commit()
	}
	b := &Baseline{Format: baselineFormat, Commit: commit, Date: time.Now().UTC().Format(time.RFC3339),
		Go: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), Load: load}
	for _, f := range figs {
		// Four digits: the noise is larger, and the file diffs cleanly.
		v, _ := strconv.ParseFloat(strconv.FormatFloat(f.Value, 'g', 4, 64), 64)
		b.Figures = append(b.Figures, Stored{f.Key, f.Label, v, f.Unit})
	}
	return b
}

// Value is the baseline's figure of that key.
func (b *Baseline) Value(key string) (float64, bool) {
	if b.byKey == nil {
		b.byKey = map[string]float64{}
		for _, f := range b.Figures {
			b.byKey[f.Key] = f.Value
		}
	}
	v, ok := b.byKey[key]
	return v, ok
}

// Save writes the baseline as indented JSON, to be committed and diffed.
func (b *Baseline) Save(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// LoadBaseline reads a baseline file; its errors name the file and say how
// to make a good one.
func LoadBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("baseline %s does not exist: write one with picosim bench --save-baseline %s", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("baseline %s is not a picosim bench baseline (%v): write it again with picosim bench --save-baseline %s", path, err, path)
	}
	switch {
	case b.Format != baselineFormat:
		return nil, fmt.Errorf("baseline %s has format %d, this picosim reads %d: write it again with picosim bench --save-baseline %s", path, b.Format, baselineFormat, path)
	case len(b.Figures) == 0:
		return nil, fmt.Errorf("baseline %s has no figures: write it again with picosim bench --save-baseline %s", path, path)
	}
	for i, f := range b.Figures {
		if f.Key == "" {
			return nil, fmt.Errorf("baseline %s: figure %d has no key", path, i+1)
		}
	}
	return &b, nil
}

// Commit is the VCS revision the binary was built from ("-dirty" when the
// tree had changes), or "" when it carries none (go run and go test stamp
// none; go build in a checkout does).
func Commit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", ""
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

// LoadAverage is the 1, 5 and 15-minute load averages from /proc/loadavg
// ("0.91 0.84 0.81"), or "unknown": the reader's measure of how noisy the
// wall-time figures are.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
