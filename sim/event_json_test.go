package sim

import (
	"encoding/json"
	"testing"
	"time"
)

// An event's time is written exactly, and reads back as the same number.
func TestEventTimesAreExactInJSON(t *testing.T) {
	for ns, want := range map[time.Duration]string{
		0: `0`, 3362709618: `3.362709618`, 12516000001: `12.516000001`, 2 * time.Second: `2`,
		1500 * time.Millisecond: `1.5`, 1: `0.000000001`, -1500 * time.Millisecond: `-1.5`,
	} {
		b, err := json.Marshal(Seconds(ns))
		if err != nil || string(b) != want {
			t.Errorf("%d ns: %s %v, want %s", ns, b, err, want)
		}
		var back float64
		if err := json.Unmarshal(b, &back); err != nil || time.Duration(back*1e9+0.5*sign(back)) != ns {
			t.Errorf("%s reads back as %v (%v)", b, back, err)
		}
	}
	var e struct{ T float64 }
	if err := json.Unmarshal(JSON(Event{At: 3362709618, Board: "pico1", Kind: EvPowerOn}), &e); err != nil || e.T != 3.362709618 {
		t.Errorf("an event: %+v %v", e, err)
	}
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}
