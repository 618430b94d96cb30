package target

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

// NoteSkipped prints, for a Ginkgo suite's report, one "NOTE: " line per
// reason specs were skipped with, so that a CI log that shows no spec
// output still says what did not run and why.
func NoteSkipped(r types.Report) {
	why := map[string]int{}
	for _, s := range r.SpecReports {
		if s.State == types.SpecStateSkipped && s.Failure.Message != "" {
			why[s.Failure.Message]++
		}
	}
	var reasons []string
	for w := range why {
		reasons = append(reasons, w)
	}
	sort.Strings(reasons)
	for _, w := range reasons {
		fmt.Printf("\nNOTE: %s: %d specs skipped: %s\n", r.SuiteDescription, why[w], strings.TrimSpace(w))
	}
}
