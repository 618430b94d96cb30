package scenario

import (
	"fmt"

	"github.com/picosim/picosim/netsim"
)

// netsim turns a scenario link into netsim's, checking it.
// picoW is the radio netsim simulates for a RadioSpec.
func (r RadioSpec) picoW() netsim.PicoW {
	return netsim.PicoW{
		JoinMin: r.JoinMin.D(), JoinMax: r.JoinMax.D(), PowerSaveOff: r.PowerSaveOff,
		AssocLossEvery: r.AssocLossEvery.D(),
		SilentEvery:    r.SilentEvery.D(), StallEvery: r.StallEvery.D(), DHCPFail: float64(r.DHCPFail),
		WedgeEvery: r.WedgeEvery.D(), NoWakeOnWLAN: r.WakeOnWLAN != nil && !*r.WakeOnWLAN,
	}
}

func (l Link) netsim() (netsim.Link, error) {
	n := netsim.Link{
		Loss: float64(l.Loss), Latency: l.Latency.D(), Jitter: l.Jitter.D(),
		TailProb: float64(l.Tail), TailMean: l.TailMean.D(),
		Duplicate: float64(l.Duplicate), Reorder: float64(l.Reorder), Corrupt: float64(l.Corrupt),
		Rate: l.Rate, Queue: l.Queue, Dist: l.Distribution,
	}
	if l.BurstLength != 0 {
		// Bursts of mean length L (R = 1/L) that lose Loss of the frames in
		// the long run: P/(P+R) = Loss.
		if l.BurstLength < 1 || l.Loss <= 0 || l.Loss >= 1 {
			return n, fmt.Errorf("burst_length %g: needs a length of 1 or more and a loss between 0 and 100%%", l.BurstLength)
		}
		r := 1 / l.BurstLength
		loss := float64(l.Loss)
		n.Burst = &netsim.Burst{P: r * loss / (1 - loss), R: r, LossBad: 1}
		n.Loss = 0
	}
	return n, n.Validate()
}
