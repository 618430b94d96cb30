package firmware

import (
	"errors"
	"time"
)

// Start is the boot loader every adapter shares: it boots the program, and
// while the image crashes at boot it waits BootFailDelay (the watchdog's
// reset), rolls the last update back and boots again. It fails only when
// there is nothing to roll back to, or flash fails. now reads the board's
// uptime; sleep waits.
func Start(b Board, f Flash, opt Options, now func() time.Duration, sleep func(time.Duration)) (*Program, error) {
	for {
		p, err := Boot(b, f, opt, now())
		if !errors.Is(err, ErrCrashed) {
			return p, err
		}
		emit(b, nil, now(), eventValue("boot_fail", err.Error()))
		sleep(BootFailDelay)
		ok, rerr := Rollback(f)
		if rerr != nil {
			return nil, rerr
		}
		if !ok {
			return nil, err // nothing to go back to: the board needs flashing
		}
		emit(b, nil, now(), eventValue("rollback", "version "+Version(f)))
	}
}
