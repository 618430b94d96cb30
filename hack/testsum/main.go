// Command testsum reads `go test -json` on stdin, prints what a reader of
// plain `go test` would see (package verdicts, and the full output of every
// failing test), and ends with one line "N passed, N failed" that CI reads.
// It exits 1 when a test or a package failed. What a passing test prints
// from "NOTE: " to the end of the line is shown too: suites say that way which specs
// they skipped and why (no namespaces for emulated boards, say).
//
//	go test -json ./... | go run ./hack/testsum
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	passed, failed, skipped := 0, 0, 0
	output := map[string][]string{} // per test, kept until it passes
	pkgFailed := false
	testFailedIn := map[string]bool{} // packages with a failing test
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Println(sc.Text()) // build errors arrive as plain text
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			output[key] = append(output[key], e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				verdict := map[string]string{"pass": "ok  ", "fail": "FAIL", "skip": "?   "}[e.Action]
				fmt.Printf("%s\t%s\t%.3fs\n", verdict, e.Package, e.Elapsed)
				if e.Action == "fail" {
					pkgFailed = true
					fmt.Print(strings.Join(output[key], ""))
					if !testFailedIn[e.Package] {
						failed++ // it did not build, or failed outside any test
					}
				}
			} else {
				switch e.Action {
				case "pass":
					passed++
					for _, line := range output[key] {
						if i := strings.Index(line, "NOTE: "); i >= 0 { // after Ginkgo's progress dots, maybe
							fmt.Printf("    %s\n", strings.TrimSpace(line[i:]))
						}
					}
				case "skip":
					skipped++
				case "fail":
					failed++
					testFailedIn[e.Package] = true
					fmt.Print(strings.Join(output[key], ""))
				}
			}
			delete(output, key)
		}
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || pkgFailed {
		os.Exit(1)
	}
}
