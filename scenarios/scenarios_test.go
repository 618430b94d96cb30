// Package scenarios_test turns every YAML scenario of this folder into Ginkgo
// specs, so that ginkgo's --label-filter, --focus, -p and --junit-report work
// on them:
//
//	go tool ginkgo --label-filter=failover ./scenarios
//	go tool ginkgo --label-filter='!emulated && !hw' ./scenarios    # the simulator only
//
// Each scenario whose targets name sim (all but those the simulator cannot
// run, such as control over TLS) passes in the simulator; one whose targets name emulated
// also runs on emulated boards (label "emulated"), and one that names hw
// runs through the hw target against a lab of emulated boards (label "hw"),
// as the nightly run does against real ones. Those two need root and
// network namespaces; elsewhere they are skipped with the reason. One that
// names rp2040 runs the shipped image on emulated RP2040s (label "rp2040",
// with PICOSIM_RP2040=1, which make rp2040 sets after installing rp2040js).
package scenarios_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/sim/cmd/entry"
	"github.com/picosim/picosim/sim/scenario"
	"github.com/picosim/picosim/sim/simtest"
	"github.com/picosim/picosim/sim/targets"
)

// TestMain lets this test binary be the emulated boards' firmware and the
// lab's power command, which the targets start as processes of their own.
func TestMain(m *testing.M) {
	entry.Reexec()
	os.Exit(m.Run())
}

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	startWallClock(PreviewSpecs("scenarios"))
	RunSpecs(t, "scenarios")
}

var _ = BeforeSuite(func() { DeferCleanup(simtest.NoLeaks()) })

// The reasons specs were skipped go in one line that `make test` shows.
var _ = ReportAfterSuite("skipped specs", func(r Report) { simtest.NoteSkipped(r) })

// Loaded while the tree is built: a file that does not load fails the suite
// with its file:line:column.
var all, loadErr = scenario.LoadAll(".")

var _ = It("loads every scenario file", func() {
	Expect(loadErr).NotTo(HaveOccurred())
	Expect(all).NotTo(BeEmpty())
})

// needNamespaces skips a spec, saying why, where emulated boards cannot run.
func needNamespaces() {
	GinkgoHelper()
	if err := targets.CanEmulate(); err != nil {
		Skip("emulated boards cannot run here: " + err.Error())
	}
}

// LongEnough is the longest a scenario may run in wall-clock time in
// make test; longer ones run on emulated boards and labs with PICOSIM_LONG=1
// (make emulated sets it), and are skipped otherwise, saying so.
const LongEnough = 90 * time.Second

// notTooLong skips a wall-clock spec of a scenario that runs longer than
// LongEnough, unless PICOSIM_LONG is set.
func notTooLong(s *scenario.Scenario) {
	GinkgoHelper()
	if d := s.MinDuration(); d > LongEnough && os.Getenv("PICOSIM_LONG") == "" {
		Skip(fmt.Sprintf("a scenario of more than %v in real time runs with PICOSIM_LONG=1 (make emulated)", LongEnough))
	}
}

// passes runs a scenario and fails the spec with the scenario's own report.
func passes(s *scenario.Scenario, opt scenario.Options) {
	GinkgoHelper()
	judge(scenario.Run(s, opt))
}

// judge fails the spec with a run's own report.
func judge(r scenario.Result) {
	GinkgoHelper()
	AddReportEntry("seed", r.Seed)
	if len(r.SkippedSteps) > 0 {
		AddReportEntry("skipped steps", strings.Join(r.SkippedSteps, "\n"))
	}
	Expect(r.Skipped).To(BeEmpty(), "the %s target skipped the scenario", r.Target)
	Expect(r.Passed).To(BeTrue(), "%s target, seed %d\n%s", r.Target, r.Seed, strings.Join(r.Failures, "\n"))
	if r.NotJudged != "" {
		Skip(r.NotJudged + " (replay: " + r.Replay + ")")
	}
}

var _ = func() bool {
	for _, s := range all {
		s.File = filepath.Join("scenarios", s.File) // replay commands run from the project root
		kinds := s.TargetNames()
		Describe(s.Name, Label(s.Labels...), func() {
			if slices.Contains(kinds, "sim") {
				It("passes in the simulator ("+s.File+")", func() {
					passes(s, scenario.Options{})
				})
			}
			if slices.Contains(kinds, "emulated") {
				It(emulatedSpec, Label("emulated"), func() {
					needNamespaces()
					notTooLong(s)
					if awaitStarted(s.Name, emulatedSpec) {
						return
					}
					passes(s, scenario.Options{Target: "emulated", Open: func(spec targets.Spec) (targets.Target, error) {
						t, err := targets.NewEmulated(spec, targets.EmulatedConfig{Log: GinkgoWriter})
						if t != nil {
							DeferCleanup(t.Close) // also when the spec is interrupted
						}
						return t, err
					}})
				})
			}
			if slices.Contains(kinds, "rp2040") {
				It("passes on rp2040: the shipped image on emulated RP2040s", Label("rp2040"), func() {
					if os.Getenv("PICOSIM_RP2040") == "" {
						Skip("the shipped image on emulated RP2040s runs with PICOSIM_RP2040=1 (make rp2040)")
					}
					passes(s, scenario.Options{Target: "rp2040", Open: func(spec targets.Spec) (targets.Target, error) {
						t, err := targets.NewRP2040(spec, targets.RP2040Config{Root: ".."})
						if t != nil {
							DeferCleanup(t.Close)
						}
						return t, err
					}})
				})
			}
			if slices.Contains(kinds, "hw") {
				It(hwSpec, Label("hw"), func() {
					needNamespaces()
					notTooLong(s)
					if awaitStarted(s.Name, hwSpec) {
						return
					}
					inv := startLab(s)
					passes(s, scenario.Options{Target: "hw", Inventory: inv.File, Open: func(spec targets.Spec) (targets.Target, error) {
						return targets.NewHW(spec, inv)
					}})
				})
			}
		})
	}
	return true
}()

const (
	emulatedSpec = "passes on emulated boards, each a process in its own network namespace"
	hwSpec       = "passes through the hw target on a lab of emulated boards"
)

// The specs on emulated boards and labs take wall-clock time, mostly
// waiting: run one after the other they took eight minutes of make test,
// with the CPU idle nine tenths of it. So the ones this run will run
// (PreviewSpecs applies --label-filter and --focus) start together before
// the suite, at most wallClockAtOnce at a time and the longest first, and
// each spec waits for its own run and judges it. Under the Ginkgo CLI's -p
// each process runs its own specs in turn instead.
var (
	started         = map[string]*startedRun{} // by scenario name and spec text
	wallClockAtOnce = 6
)

type startedRun struct {
	done chan struct{}
	log  simtest.SyncBuffer // the boards' output, for the spec's report
	r    scenario.Result
	err  error // the lab did not start
}

// startWallClock starts the wall-clock specs that the preview says will run.
func startWallClock(preview Report) {
	if suite, _ := GinkgoConfiguration(); suite.ParallelTotal > 1 || targets.CanEmulate() != nil {
		return
	}
	byName := map[string]*scenario.Scenario{}
	for _, s := range all {
		byName[s.Name] = s
	}
	type job struct {
		s    *scenario.Scenario
		spec string
		run  *startedRun
	}
	var jobs []job
	for _, sr := range preview.SpecReports {
		n := len(sr.ContainerHierarchyTexts)
		if sr.State.Is(types.SpecStateSkipped) || n == 0 || (sr.LeafNodeText != emulatedSpec && sr.LeafNodeText != hwSpec) {
			continue
		}
		s := byName[sr.ContainerHierarchyTexts[n-1]]
		if s == nil || (s.MinDuration() > LongEnough && os.Getenv("PICOSIM_LONG") == "") {
			continue
		}
		r := &startedRun{done: make(chan struct{})}
		started[s.Name+"\x00"+sr.LeafNodeText] = r
		jobs = append(jobs, job{s, sr.LeafNodeText, r})
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].s.MinDuration() > jobs[j].s.MinDuration() })
	slots := make(chan struct{}, wallClockAtOnce)
	for _, j := range jobs {
		go func() {
			slots <- struct{}{}
			defer func() { <-slots; close(j.run.done) }()
			if j.spec == emulatedSpec {
				j.run.r = scenario.Run(j.s, scenario.Options{Target: "emulated", Open: func(spec targets.Spec) (targets.Target, error) {
					return targets.NewEmulated(spec, targets.EmulatedConfig{Log: &j.run.log}) // Run closes it
				}})
				return
			}
			inv, stop, err := newLab(j.s, &j.run.log)
			if err != nil {
				j.run.err = err
				return
			}
			defer stop()
			j.run.r = scenario.Run(j.s, scenario.Options{Target: "hw", Inventory: inv.File, Open: func(spec targets.Spec) (targets.Target, error) {
				return targets.NewHW(spec, inv)
			}})
		}()
	}
}

// awaitStarted judges the spec by its run started before the suite, if it
// had one, and reports whether it did.
func awaitStarted(name, spec string) bool {
	GinkgoHelper()
	r := started[name+"\x00"+spec]
	if r == nil {
		return false
	}
	<-r.done
	GinkgoWriter.Write([]byte(r.log.String()))
	Expect(r.err).NotTo(HaveOccurred())
	judge(r.r)
	return true
}

// newLab runs the scenario's boards as a lab, outside any spec, and
// returns its inventory and how to stop it.
func newLab(s *scenario.Scenario, log io.Writer) (*targets.Inventory, func(), error) {
	dir, err := os.MkdirTemp("", "picosim-lab-")
	if err != nil {
		return nil, nil, err
	}
	lab, err := targets.NewLab(s.Spec("hw", s.Seed), targets.EmulatedConfig{Log: log}, filepath.Join(dir, "power.sock"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() { lab.Close(); os.RemoveAll(dir) }
	power, err := targets.PowerCommand(filepath.Join(dir, "power.sock"))
	if err != nil {
		stop()
		return nil, nil, err
	}
	inv := lab.Inventory(power)
	inv.File = filepath.Join(dir, "lab.yaml")
	if err := inv.Write(inv.File); err != nil {
		stop()
		return nil, nil, err
	}
	if _, err := targets.LoadInventory(inv.File); err != nil {
		stop()
		return nil, nil, fmt.Errorf("the lab's inventory %s: %w", inv.File, err)
	}
	return inv, stop, nil
}

// startLab runs the scenario's boards as a lab and returns its inventory.
func startLab(s *scenario.Scenario) *targets.Inventory {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	socket := filepath.Join(dir, "power.sock")
	lab, err := targets.NewLab(s.Spec("hw", s.Seed), targets.EmulatedConfig{Log: GinkgoWriter}, socket)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(lab.Close)
	power, err := targets.PowerCommand(socket)
	Expect(err).NotTo(HaveOccurred())
	inv := lab.Inventory(power)
	inv.File = filepath.Join(dir, "lab.yaml")
	Expect(inv.Write(inv.File)).To(Succeed())
	_, err = targets.LoadInventory(inv.File) // what the lab writes, the hw target reads
	Expect(err).NotTo(HaveOccurred(), fmt.Sprintf("the lab's inventory %s", inv.File))
	return inv
}

// The same seed gives the same frames, byte for byte, TCP included: gVisor's
// random sources (ISNs, ephemeral ports, timestamps) are seeded from the
// scenario's seed, and a board that loses power sends nothing more.
var _ = Describe("captures of TCP scenarios", func() {
	for _, file := range []string{"server-new-address.yaml", "update-rollback.yaml", "rgb-under-loss.yaml"} {
		It("are byte-identical for the same seed: "+file, func() {
			s, err := scenario.Load(file)
			Expect(err).NotTo(HaveOccurred())
			capture := func() []byte {
				var buf bytes.Buffer
				r := scenario.Run(s, scenario.Options{Capture: &buf})
				Expect(r.Passed).To(BeTrue(), strings.Join(r.Failures, "\n"))
				return buf.Bytes()
			}
			first, second := capture(), capture()
			Expect(len(first)).To(BeNumerically(">", 5000))
			Expect(bytes.Equal(first, second)).To(BeTrue(), "captures of %d and %d bytes differ from byte %d",
				len(first), len(second), simtest.FirstDifference(first, second))
		})
	}
})
