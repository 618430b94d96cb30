package firmware

import (
	"errors"
	"strings"
	"time"

	"github.com/picosim/picosim/node/control"
)

// The files of a board's image. main.py stands for the program: the real
// piconetcontrol server is a MicroPython main.py, and an update replaces it.
const (
	FileMain    = "main.py"
	FileVersion = "VERSION"
	// FileServerBase is piconetcontrol's server_base.py: the real server
	// reports the _VERSION it declares, so a board that an update gave one
	// reports that version (Version).
	FileServerBase = "server_base.py"
	FileWLAN       = "config/config_wlan.json"
	FileSettings   = "config/config_node.json"
	FileBoots      = "boot_count" // the incarnation: grows with every boot

	// prevDir holds what an update replaced, until the new image has booted.
	prevDir   = ".prev/"
	prevFiles = ".prev/.files" // names saved under prevDir, one per line
	prevAdded = ".prev/.added" // names the update added, removed on rollback
)

// CrashMarker in main.py makes a board fail at boot, so that tests can ship
// a bad image and watch the rollback.
const CrashMarker = "# picosim: crash at boot"

// BootFailDelay is how long a board with a crashing image stays down before
// its boot loader rolls the image back (a watchdog's reset).
const BootFailDelay = 2 * time.Second

// ErrCrashed is Boot's error when the image fails its health check.
var ErrCrashed = errors.New("firmware: the image crashed at boot")

// DefaultFiles is the image a board leaves the factory with.
func DefaultFiles() map[string]string {
	return map[string]string{
		FileWLAN:    `{"ssid": "picosim", "pwd": "picosim-lan", "port": 12345}`,
		FileMain:    "# piconetcontrol server, emulated by picosim\n",
		FileVersion: control.Version,
	}
}

// Format writes DefaultFiles where flash lacks them.
func Format(f Flash) error {
	for name, content := range DefaultFiles() {
		if _, ok := f.ReadFile(name); !ok {
			if err := f.WriteFile(name, []byte(content)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Version is the version of the image in flash: the _VERSION of the
// server_base.py an update installed, as piconetcontrol's server reports
// (and its client's update_server checks), else the image's VERSION file.
func Version(f Flash) string {
	if src, ok := f.ReadFile(FileServerBase); ok {
		if v := pythonVersion(string(src)); v != "" {
			return v
		}
	}
	v, _ := f.ReadFile(FileVersion)
	return strings.TrimSpace(string(v))
}

// pythonVersion finds a Python source's version as piconetcontrol's
// client does (update.py: the first match of \s+_?VERSION = "(.+)"): a
// line that is, past its indent, `_VERSION = "..."` or `VERSION = "..."`
// after something (the regexp's \s+ takes the newline before a top-level
// one, not the file's first line); the value runs to the line's last quote.
func pythonVersion(src string) string {
	for i, line := range strings.Split(src, "\n") {
		rest := strings.TrimLeft(line, " \t\r\f\v")
		if i == 0 && len(rest) == len(line) {
			continue // nothing before it for \s+ to match
		}
		rest = strings.TrimPrefix(rest, "_")
		rest, ok := strings.CutPrefix(rest, `VERSION = "`)
		if !ok {
			continue
		}
		if end := strings.LastIndexByte(rest, '"'); end > 0 {
			return rest[:end]
		}
	}
	return ""
}

// Healthy is the boot's health check: main.py exists, is not empty, and
// does not crash.
func Healthy(f Flash) error {
	main, ok := f.ReadFile(FileMain)
	switch {
	case !ok || len(strings.TrimSpace(string(main))) == 0:
		return errors.New("main.py is missing or empty")
	case strings.Contains(string(main), CrashMarker):
		return errors.New("main.py crashed at boot")
	}
	return nil
}

// Install writes an update over the image, keeping what it replaces so that
// Rollback can restore it should the new image fail to boot.
func Install(f Flash, files []control.File) error {
	Confirm(f) // an older saved image is gone for good
	var saved, added []string
	for _, file := range files {
		if strings.HasPrefix(file.Name, prevDir) {
			return errors.New("firmware: update: " + file.Name + " is reserved")
		}
		if old, ok := f.ReadFile(file.Name); ok {
			if err := f.WriteFile(prevDir+file.Name, old); err != nil {
				return err
			}
			saved = append(saved, file.Name)
		} else {
			added = append(added, file.Name)
		}
	}
	if err := f.WriteFile(prevFiles, []byte(strings.Join(saved, "\n"))); err != nil {
		return err
	}
	if err := f.WriteFile(prevAdded, []byte(strings.Join(added, "\n"))); err != nil {
		return err
	}
	for _, file := range files {
		if err := f.WriteFile(file.Name, file.Content); err != nil {
			return err
		}
	}
	return nil
}

// Rollback restores the image before the last update and reports whether
// there was one to restore.
func Rollback(f Flash) (bool, error) {
	list, ok := f.ReadFile(prevFiles)
	if !ok {
		return false, nil
	}
	for _, name := range lines(list) {
		old, _ := f.ReadFile(prevDir + name)
		if err := f.WriteFile(name, old); err != nil {
			return false, err
		}
	}
	added, _ := f.ReadFile(prevAdded)
	for _, name := range lines(added) {
		if err := f.Remove(name); err != nil {
			return false, err
		}
	}
	return true, Confirm(f)
}

// Confirm forgets the image saved by the last update: the new one is kept.
func Confirm(f Flash) error {
	list, ok := f.ReadFile(prevFiles)
	if !ok {
		return nil
	}
	for _, name := range lines(list) {
		if err := f.Remove(prevDir + name); err != nil {
			return err
		}
	}
	if err := f.Remove(prevAdded); err != nil {
		return err
	}
	return f.Remove(prevFiles)
}

func lines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
