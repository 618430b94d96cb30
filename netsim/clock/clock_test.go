package clock

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestTimersFireInTimeThenInsertionOrder(t *testing.T) {
	v := NewVirtual()
	var got []string
	rec := func(s string) func() { return func() { got = append(got, s+"@"+v.Now().String()) } }
	v.AfterFunc(2*time.Second, rec("c"))
	v.AfterFunc(time.Second, rec("a"))
	v.AfterFunc(time.Second, rec("b"))
	stopped := v.AfterFunc(1500*time.Millisecond, rec("never"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	v.Run(5 * time.Second)
	want := []string{"a@1s", "b@1s", "c@2s"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if v.Now() != 5*time.Second {
		t.Fatalf("Run left the clock at %v", v.Now())
	}
}

func TestTimerSetFromACallbackAtZeroDelayFiresAtTheSameInstant(t *testing.T) {
	v := NewVirtual()
	var at time.Duration = -1
	v.AfterFunc(time.Second, func() { v.AfterFunc(0, func() { at = v.Now() }) })
	v.Run(time.Minute)
	if at != time.Second {
		t.Fatalf("fired at %v", at)
	}
}

func TestResetMovesAPendingTimer(t *testing.T) {
	v := NewVirtual()
	var at time.Duration
	tm := v.AfterFunc(time.Second, func() { at = v.Now() })
	tm.Reset(3 * time.Second)
	v.Run(10 * time.Second)
	if at != 3*time.Second {
		t.Fatalf("fired at %v", at)
	}
}

func TestRunUntilStopsRightAfterTheDecisiveEvent(t *testing.T) {
	v := NewVirtual()
	n := 0
	for i := 1; i <= 10; i++ {
		v.AfterFunc(time.Duration(i)*time.Second, func() { n++ })
	}
	if !v.RunUntil(time.Minute, func() bool { return n == 4 }) {
		t.Fatal("did not stop early")
	}
	if v.Now() != 4*time.Second || v.Pending() != 6 {
		t.Fatalf("now %v, pending %d", v.Now(), v.Pending())
	}
}

type note struct {
	log *[]string
	s   string
}

func (n note) Fire() { *n.log = append(*n.log, n.s) }

func TestPostInterleavesWithTimersAndRecyclesThem(t *testing.T) {
	v := NewVirtual()
	var got []string
	for round := range 3 {
		v.Post(time.Second, note{&got, "post"})
		v.AfterFunc(time.Second, func() { got = append(got, "timer") })
		v.Post(0, note{&got, "now"})
		v.Run(v.Now() + time.Second)
		if want := []string{"now", "post", "timer"}; len(got) != 3*(round+1) || got[3*round] != want[0] || got[3*round+1] != want[1] || got[3*round+2] != want[2] {
			t.Fatalf("round %d: %v", round, got)
		}
	}
	if len(v.free) != 2 {
		t.Fatalf("%d timers on the free list, want the 2 that Post used, reused each round", len(v.free))
	}
}

func TestRunPacedFollowsTheWallClockAtItsSpeed(t *testing.T) {
	v := NewVirtual()
	fired := make(chan time.Duration, 1)
	v.AfterFunc(2*time.Second, func() { fired <- v.Now() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	go v.RunPaced(ctx, 20) // 2 simulated seconds in 100 ms
	select {
	case at := <-fired:
		if at != 2*time.Second {
			t.Fatalf("fired at %v", at)
		}
		if wall := time.Since(start); wall < 90*time.Millisecond {
			t.Fatalf("2 s at 20x took only %v of wall time", wall)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the timer never fired")
	}
	// Work handed in from another goroutine runs on the loop, at about the
	// simulated time that corresponds to now.
	done := make(chan time.Duration, 1)
	v.Post(0, Func(func() { done <- v.Now() }))
	select {
	case at := <-done:
		if at < 2*time.Second {
			t.Fatalf("posted work ran at %v", at)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("posted work never ran")
	}
}

// Zero-delay timers skip the heap (they wait in a queue of their own) and
// timers set to Never wait outside both; neither may change the order of
// (time, order set) that every replay depends on, nor what Stop, Reset and
// Pending say.
func TestZeroDelayAndNeverTimersKeepTheOrder(t *testing.T) {
	v := NewVirtual()
	var got []string
	rec := func(s string) func() { return func() { got = append(got, s+"@"+v.Now().String()) } }
	parked := v.AfterFunc(Never, rec("parked"))
	v.AfterFunc(time.Second, func() {
		got = append(got, "a@"+v.Now().String())
		v.AfterFunc(0, rec("a0")) // after b, set earlier for the same instant
		stopped := v.AfterFunc(0, rec("stopped"))
		moved := v.AfterFunc(0, rec("moved"))
		v.AfterFunc(0, rec("a1"))
		if !stopped.Stop() || stopped.Stop() {
			t.Error("Stop of a zero-delay timer should report true once")
		}
		moved.Reset(0) // now after a1
		again := v.AfterFunc(0, rec("reset twice"))
		again.Reset(0)
		again.Reset(0)
	})
	v.AfterFunc(time.Second, rec("b"))
	v.AfterFunc(2*time.Second, func() {
		got = append(got, "c@"+v.Now().String())
		parked.Reset(0)
	})
	if n := v.Pending(); n != 4 {
		t.Fatalf("pending %d, want 4 (the parked one included)", n)
	}
	v.Run(time.Minute)
	want := []string{"a@1s", "b@1s", "a0@1s", "a1@1s", "moved@1s", "reset twice@1s", "c@2s", "parked@2s"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if n := v.Pending(); n != 0 {
		t.Fatalf("pending %d after the run", n)
	}
	p := v.AfterFunc(Never, rec("never"))
	if v.Step() {
		t.Fatal("Step fired a timer set to Never")
	}
	if !p.Stop() || v.Pending() != 0 {
		t.Fatal("Stop of a parked timer should report true and leave nothing pending")
	}
}
