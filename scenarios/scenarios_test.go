// Package scenarios_test turns every YAML scenario of this folder into Ginkgo
// specs, so that ginkgo's --label-filter, --focus, -p and --junit-report work
// on them:
//
//	go tool ginkgo --label-filter=failover ./scenarios
package scenarios_test

import (
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/sim/scenario"
)

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "scenarios")
}

// Loaded while the tree is built: a file that does not load fails the suite
// with its file:line:column.
var all, loadErr = scenario.LoadAll(".")

var _ = It("loads every scenario file", func() {
	Expect(loadErr).NotTo(HaveOccurred())
	Expect(all).NotTo(BeEmpty())
})

var _ = func() bool {
	for _, s := range all {
		s.File = filepath.Join("scenarios", s.File) // replay commands run from the project root
		Describe(s.Name, Label(s.Labels...), func() {
			It("passes ("+s.File+")", func() {
				r := scenario.Run(s, scenario.Options{})
				AddReportEntry("seed", r.Seed)
				Expect(r.Passed).To(BeTrue(), "seed %d\n%s", r.Seed, strings.Join(r.Failures, "\n"))
			})
		})
	}
	return true
}()
