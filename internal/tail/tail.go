// Package tail keeps the end of what a child process (an emulated board, an
// RP2040 runner) writes on its standard error, to say why it died, and can
// copy each line to a log as it comes.
package tail

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Tail is an io.Writer for exec.Cmd.Stderr.
type Tail struct {
	// Keep is how many bytes are kept: the last ones.
	Keep int
	// Log, if set, gets every line as it comes, prefixed with "Name: ".
	Log  io.Writer
	Name string

	mu  sync.Mutex
	buf []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.Keep {
		t.buf = t.buf[len(t.buf)-t.Keep:]
	}
	if t.Log != nil {
		for _, line := range strings.SplitAfter(string(p), "\n") {
			if line != "" {
				fmt.Fprintf(t.Log, "%s: %s", t.Name, line)
			}
		}
	}
	return len(p), nil
}

// Text is what was kept, without surrounding space.
func (t *Tail) Text() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// String says it for a message about the process's end.
func (t *Tail) String() string {
	if s := t.Text(); s != "" {
		return "its last words: " + s
	}
	return "it wrote nothing on standard error"
}
