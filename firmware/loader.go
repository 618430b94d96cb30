package firmware

import (
	"errors"
	"time"
)

// fileBootFailed marks a boot whose image crashed, for the boot loader's
// next start: what a watchdog reset leaves a real boot loader to find.
const fileBootFailed = "boot_failed"

// ErrNothingToRollBack is Start's error when the image crashes and no
// earlier image is kept: the board needs flashing.
var ErrNothingToRollBack = errors.New("firmware: the image crashes at boot and there is no earlier one: reflash the board")

// Start is the boot loader every adapter shares, and it never waits. It
// boots the program from flash at now (the board's uptime). When the image
// crashes at boot, it returns no program and the time to wait
// (BootFailDelay, the watchdog): call Start again then, and it rolls the
// last update back before booting. It fails when there is nothing to roll
// back to, or when flash fails.
func Start(b Board, f Flash, opt Options, now time.Duration) (p *Program, retry time.Duration, err error) {
	r := reporter{b: b, opt: &opt, name: opt.Name}
	if _, failed := f.ReadFile(fileBootFailed); failed {
		ok, err := Rollback(f)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, ErrNothingToRollBack
		}
		if err := f.Remove(fileBootFailed); err != nil {
			return nil, 0, err
		}
		r.report(Event{At: now, Kind: EvRollback, Detail: "version " + Version(f)})
	}
	p, err = Boot(b, f, opt, now)
	if errors.Is(err, ErrCrashed) {
		if werr := f.WriteFile(fileBootFailed, []byte("1")); werr != nil {
			return nil, 0, werr
		}
		r.report(Event{At: now, Kind: EvBootFail, Detail: err.Error()})
		return nil, BootFailDelay, nil
	}
	return p, 0, err
}
