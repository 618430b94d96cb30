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

	// An update's files, as piconetcontrol's server keeps them until the
	// new image has booted: FileUpdate lists the update's file names,
	// comma-separated; each file it replaced is kept as "_" + its name;
	// FileLogs says how a rollback went.
	FileUpdate   = "update.txt"
	FileLogs     = "logs.txt"
	backupPrefix = "_"
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

// Install writes an update over the image as piconetcontrol's server
// does (server_base.py, _action_update): update.txt lists the update's
// files, and each file it replaces is kept as "_" + its name, so that
// Rollback can restore it should the new image fail to boot.
func Install(f Flash, files []control.File) error {
	if err := Confirm(f); err != nil { // an older saved image is gone for good
		return err
	}
	var names []string
	for _, file := range files {
		if strings.HasPrefix(file.Name, backupPrefix) || file.Name == FileUpdate || strings.Contains(file.Name, ",") {
			return errors.New("firmware: update: " + file.Name + " is reserved (backups start with _; update.txt lists the files, comma-separated)")
		}
		names = append(names, file.Name)
	}
	if err := f.WriteFile(FileUpdate, []byte(strings.Join(names, ","))); err != nil {
		return err
	}
	for _, file := range files {
		if old, ok := f.ReadFile(file.Name); ok {
			if err := f.WriteFile(backupPrefix+file.Name, old); err != nil {
				return err
			}
		}
		if err := f.WriteFile(file.Name, file.Content); err != nil {
			return err
		}
	}
	return nil
}

// Rollback restores the image before the last update, as the real
// server's main.py does when the new one fails (each "_" + name back to
// its name, update.txt removed, logs.txt saying so), and reports whether
// there was one to restore. Where the real server's rename fails, for a
// file the update added, picosim removes it: the image before the update
// had none.
func Rollback(f Flash) (bool, error) {
	list, ok := f.ReadFile(FileUpdate)
	if !ok {
		return false, nil
	}
	if err := f.WriteFile(FileLogs, []byte("update failed, attempting rollback...")); err != nil {
		return false, err
	}
	for _, name := range strings.Split(string(list), ",") {
		if name == "" {
			continue
		}
		if old, ok := f.ReadFile(backupPrefix + name); ok {
			if err := f.WriteFile(name, old); err != nil {
				return false, err
			}
			if err := f.Remove(backupPrefix + name); err != nil {
				return false, err
			}
		} else if err := f.Remove(name); err != nil {
			return false, err
		}
	}
	if err := f.Remove(FileUpdate); err != nil {
		return false, err
	}
	logs, _ := f.ReadFile(FileLogs)
	return true, f.WriteFile(FileLogs, append(logs, "rollback successful... resetting"...))
}

// Confirm forgets the image saved by the last update: the new one booted
// and is kept. (The real server leaves update.txt and the backups behind,
// so a later crash, unrelated, would roll back an update that had booted
// long before: picosim does not.)
func Confirm(f Flash) error {
	list, ok := f.ReadFile(FileUpdate)
	if !ok {
		return nil
	}
	for _, name := range strings.Split(string(list), ",") {
		if _, ok := f.ReadFile(backupPrefix + name); ok && name != "" {
			if err := f.Remove(backupPrefix + name); err != nil {
				return err
			}
		}
	}
	return f.Remove(FileUpdate)
}
