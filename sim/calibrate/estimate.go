package calibrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/picosim/picosim/node"
)

// Options tunes Estimate.
type Options struct {
	// Source names the capture in the profile (its file name).
	Source string
	// MinSamples is the fewest samples a pair needs to be calibrated;
	// pairs with fewer are listed as not estimated. Default 100.
	MinSamples int
	// Progress, if set, is called after each pair with the pairs done so
	// far and in all, from the goroutines that estimate them, one at a
	// time.
	Progress func(done, total int)
}

// ErrNoHeartbeats is Estimate's error for a capture without discovery
// heartbeats; ErrOneBoard for heartbeats from one board only.
var (
	ErrNoHeartbeats = errors.New("no discovery heartbeats in the capture (UDP to port 37020): is it a capture of the boards' LAN?")
	ErrOneBoard     = errors.New("heartbeats from one board only: a link needs two")
)

// Profile is what Estimate found: the boards, and a link for every ordered
// pair of them.
type Profile struct {
	Source string `json:"source,omitempty"`
	// Start is the first packet's time (in JSON as RFC 3339, left out if
	// its year is not 0 to 9999, as a damaged capture's can be).
	Start      time.Time     `json:"-"`
	Duration   time.Duration `json:"duration_ns"`
	Packets    int           `json:"packets"`    // packets in the capture
	Heartbeats int           `json:"heartbeats"` // heartbeats read (duplicates included)
	Truncated  string        `json:"truncated,omitempty"`
	Boards     []Board       `json:"boards"`
	Pairs      []Pair        `json:"pairs"`
	// Notes say what the profile cannot tell, for every pair.
	Notes []string `json:"notes"`
}

// MarshalJSON writes the profile with Start as text.
func (p *Profile) MarshalJSON() ([]byte, error) {
	type plain Profile
	start := ""
	if y := p.Start.Year(); y >= 0 && y <= 9999 {
		start = p.Start.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(struct {
		Start string `json:"start,omitempty"`
		*plain
	}{start, (*plain)(p)})
}

// Board is one board of the capture.
type Board struct {
	Name       string `json:"name"`
	IP         string `json:"ip"`
	Heartbeats int    `json:"heartbeats"` // captured, duplicates left out
	// Boots is how many incarnations it sent heartbeats under (a reboot
	// makes one more).
	Boots int `json:"boots"`
	// NotCaptured counts the heartbeats the sniffer never saw: gaps in
	// the sequence numbers of one incarnation. They are no one's loss in
	// the profile (the sender's uplink or the sniffer lost them; a capture
	// cannot tell which) and are left out of every pair's samples.
	NotCaptured int `json:"not_captured"`
	Duplicates  int `json:"duplicates"`
	// Period is the median interval between its heartbeats.
	Period time.Duration `json:"period_ns"`
}

// Pair is the link of frames from one board to another, as the receiver's
// witness reports show it.
type Pair struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Reports is how many of the receiver's heartbeats were examined;
	// Samples how many of them tell the fate of one of the sender's (see
	// the package documentation for which); Lost how many of those did not
	// show it heard: lost, or too late, or looking like a relay. Loss
	// allows for the last two; Lost/Samples does not.
	Reports int `json:"reports"`
	Samples int `json:"samples"`
	Lost    int `json:"lost"`
	// Excluded counts the reports left out, by reason: timing (no
	// heartbeat of the sender's is the newest before it, or not the
	// receiver's first report after it), not_captured (a heartbeat the
	// capture lacks may matter), no_entry (a full witness list without the
	// sender), too_soon (f < 0.5), relay_unknown (a relay whose time the
	// report hides), anomaly (a report of a heartbeat not yet sent).
	Excluded map[string]int `json:"excluded,omitempty"`
	// Estimated is false when the pair had fewer than MinSamples samples:
	// then only the counts mean anything.
	Estimated bool `json:"estimated"`

	// Loss is the long-run loss probability, LossSE its standard error
	// (allowing for the correlation of bursts).
	Loss   float64 `json:"loss"`
	LossSE float64 `json:"loss_se"`
	// Gilbert model (Gilbert–Elliott with no loss in Good and all in Bad):
	// P is Good→Bad, R Bad→Good per frame, Lambda = 1-P-R the correlation
	// of consecutive frames' fates. BurstLength = 1/R is the mean burst,
	// BurstSE its standard error. Bursty is true when Lambda is positive
	// by more than two standard errors: otherwise losses look independent
	// and the profile writes loss alone. A standard error of -1 means
	// unknown: the likelihood has no curvature there (no loss seen, or
	// its maximum at a bound).
	P           float64 `json:"p"`
	R           float64 `json:"r"`
	Lambda      float64 `json:"lambda"`
	LambdaSE    float64 `json:"lambda_se"`
	BurstLength float64 `json:"burst_length"`
	BurstSE     float64 `json:"burst_se"`
	Bursty      bool    `json:"bursty"`

	Latency Latency `json:"latency"`
	// Guard is how long after a heartbeat's send time a report must come
	// to count it as lost: frames slower than this count as lost.
	Guard time.Duration `json:"guard_ns"`
	// Warning, if set, says why the estimates are less than they seem.
	Warning string `json:"warning,omitempty"`
}

// Latency is the one-way delay of the frames heard, in milliseconds, from
// the distribution fitted to their 1 ms intervals (see the package
// documentation). Samples counts the frames it was fitted to.
type Latency struct {
	Samples int     `json:"samples"`
	Min     float64 `json:"min_ms"`
	Mean    float64 `json:"mean_ms"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
	// StdDev is the latency's standard deviation. Min to Max is where the
	// fitted distribution has mass; Mean and the percentiles are its own.
	StdDev float64 `json:"stddev_ms"`
	// Dist is the jitter's shape that fits better, "normal" or "uniform"
	// (by the Kolmogorov–Smirnov distance to each, both convolved with the
	// quantisation), or "" when the jitter is too small to tell.
	Dist      string  `json:"distribution"`
	KSNormal  float64 `json:"ks_normal"`
	KSUniform float64 `json:"ks_uniform"`
	// Jitter is the scenario format's jitter for Dist: the standard
	// deviation (normal) or the half-width (uniform, Latency±Jitter).
	Jitter float64 `json:"jitter_ms"`
}

// board is a Board while estimating: its heartbeats in time order.
type board struct {
	Board
	ip     node.Addr
	hbs    []*hb
	maxWit int // the longest witness list it sent
	// blind are the spans (ns) in which it may have sent heartbeats the
	// capture lacks, in time order: a relay could hide in them.
	blind []span
}

type span struct{ from, to int64 }

// blindIn reports whether the board may have sent a heartbeat the capture
// lacks in (from, to].
func (b *board) blindIn(from, to int64) bool {
	i := sort.Search(len(b.blind), func(i int) bool { return b.blind[i].to > from })
	return i < len(b.blind) && b.blind[i].from < to
}

// hb is a heartbeat with its time in nanoseconds from the capture's start.
type hb struct {
	*Heartbeat
	at int64
	// carriers are the other boards' heartbeats whose witnesses report
	// this one: possible relays.
	carriers []carrier
}

type carrier struct {
	board int
	hb    *hb
	age   uint16
}

type hbKey struct {
	ip       node.Addr
	inc, seq uint32
}

// Estimate works out the link of every ordered pair of boards that sent
// heartbeats in the capture. See the package documentation for how.
func Estimate(c *Capture, opt Options) (*Profile, error) {
	if opt.MinSamples <= 0 {
		opt.MinSamples = 100
	}
	if c == nil || len(c.Heartbeats) == 0 {
		return nil, ErrNoHeartbeats
	}
	boards := index(c)
	if len(boards) < 2 {
		return nil, ErrOneBoard
	}
	p := &Profile{Source: opt.Source, Start: c.Start, Duration: c.Duration(), Packets: c.Packets, Heartbeats: len(c.Heartbeats), Truncated: c.Problem}
	for _, b := range boards {
		p.Boards = append(p.Boards, b.Board)
	}
	// Pairs in sender order, each on its own: the index is read-only now.
	var jobs [][2]int
	for ai := range boards {
		for bi := range boards {
			if ai != bi {
				jobs = append(jobs, [2]int{ai, bi})
			}
		}
	}
	p.Pairs = make([]Pair, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			for i := range next {
				ai, bi := jobs[i][0], jobs[i][1]
				e := &pairEst{boards: boards, a: ai, b: bi}
				p.Pairs[i] = e.estimate(boards[ai], boards[bi], opt)
				if opt.Progress != nil {
					mu.Lock()
					done++
					opt.Progress(done, len(jobs))
					mu.Unlock()
				}
			}
		})
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	p.Notes = append(p.Notes, notes...)
	if dup := duplicateNames(boards); dup != "" {
		p.Notes = append(p.Notes, dup)
	}
	return p, nil
}

// index sorts the heartbeats by board and time, and finds every
// heartbeat's carriers.
func index(c *Capture) []*board {
	byIP := map[node.Addr]int{}
	var boards []*board
	for i := range c.Heartbeats {
		h := &c.Heartbeats[i]
		bi, ok := byIP[h.From]
		if !ok {
			bi = len(boards)
			byIP[h.From] = bi
			boards = append(boards, &board{ip: h.From, Board: Board{IP: h.From.String()}})
		}
		b := boards[bi]
		b.Name = h.Name // the latest name it gave
		b.hbs = append(b.hbs, &hb{Heartbeat: h, at: int64(h.At.Sub(c.Start))})
	}
	seen := map[hbKey]*hb{}
	for _, b := range boards {
		// Time order; a heartbeat captured twice counts once.
		sort.SliceStable(b.hbs, func(i, j int) bool { return b.hbs[i].at < b.hbs[j].at })
		out := b.hbs[:0]
		var periods []int64
		incs := map[uint32]bool{}
		for _, h := range b.hbs {
			k := hbKey{b.ip, h.Incarnation, h.Seq}
			if seen[k] != nil {
				b.Duplicates++
				continue
			}
			seen[k] = h
			incs[h.Incarnation] = true
			if n := len(out); n > 0 && out[n-1].Incarnation == h.Incarnation && h.Seq > out[n-1].Seq {
				gap := h.Seq - out[n-1].Seq
				b.NotCaptured += int(min(gap-1, 1<<20))
				periods = append(periods, (h.at-out[n-1].at)/int64(gap))
			}
			b.maxWit = max(b.maxWit, len(h.Witnesses))
			out = append(out, h)
		}
		b.hbs = out
		b.Heartbeats, b.Boots = len(out), len(incs)
		if len(periods) > 0 {
			slices.Sort(periods)
			b.Period = time.Duration(periods[len(periods)/2])
		}
		b.blind = blindSpans(b)
	}
	sort.SliceStable(boards, func(i, j int) bool { return boards[i].ip.Less(boards[j].ip) })
	for i, b := range boards {
		byIP[b.ip] = i
	}
	for bi, b := range boards {
		for _, h := range b.hbs {
			for _, w := range h.Witnesses {
				if w.IP == b.ip {
					continue
				}
				if t := seen[hbKey{w.IP, w.Incarnation, w.Seq}]; t != nil {
					t.carriers = append(t.carriers, carrier{board: bi, hb: h, age: w.AgeMS})
				}
			}
		}
	}
	for _, b := range boards {
		if b.Name == "" {
			b.Name = b.IP
		}
	}
	return boards
}

// blindSpans are the spans in which b may have sent heartbeats that the
// capture lacks: before its first heartbeat unless that is its first since
// boot (seq 1), between two that are not consecutive, and for two periods
// after its last one of an incarnation (it may have gone on unseen, or been
// switched off: a board that is off sends nothing).
func blindSpans(b *board) []span {
	p := int64(b.Period)
	if p <= 0 {
		p = int64(time.Second)
	}
	var out []span
	add := func(from, to int64) {
		if n := len(out); n > 0 && from <= out[n-1].to {
			out[n-1].to = max(out[n-1].to, to)
			return
		}
		out = append(out, span{from, to})
	}
	for i, h := range b.hbs {
		switch {
		case i == 0:
			if h.Seq != 1 {
				add(math.MinInt64, h.at)
			}
		case b.hbs[i-1].Incarnation != h.Incarnation:
			prev := b.hbs[i-1]
			add(prev.at, min(h.at, prev.at+2*p))
			if h.Seq != 1 {
				add(prev.at, h.at)
			}
		case h.Seq != b.hbs[i-1].Seq+1:
			add(b.hbs[i-1].at, h.at)
		}
	}
	if n := len(b.hbs); n > 0 {
		add(b.hbs[n-1].at, b.hbs[n-1].at+2*p)
	}
	return out
}

// duplicateNames says which boards share a name, if any.
func duplicateNames(boards []*board) string {
	seen := map[string]string{}
	for _, b := range boards {
		if ip, dup := seen[b.Name]; dup {
			return fmt.Sprintf("two boards call themselves %s (%s and %s): the profile names both so, and a scenario cannot tell them apart", b.Name, ip, b.IP)
		}
		seen[b.Name] = b.IP
	}
	return ""
}

// pairEst estimates the link from boards[a] to boards[b].
type pairEst struct {
	boards []*board
	a, b   int
	// samples and window of the last pass, for the tests to look at.
	samples []sample
	window  window
}

// sample is one of A's heartbeats whose fate at B a report tells.
type sample struct {
	inc, seq uint32
	// heard: B's report shows B heard the frame itself; lat is then when
	// (ms after it was sent), NaN if not known.
	heard bool
	lat   float64
	// m is how long the frame had to reach B before the report or a
	// relay told B of it first (ms). f is the probability that B's report
	// shows a frame that was not lost as heard: that it arrived within m,
	// and not in a millisecond where it would look like a relay. full:
	// f is 1 by construction (m past the guard, no relay's millisecond in
	// the way): the latency, if heard, is not cut short.
	m, f float64
	full bool
}

// Exclusion reasons, as Pair.Excluded names them.
const (
	exTiming   = "timing"       // the report settles none of A's heartbeats
	exGap      = "not_captured" // a heartbeat the sniffer missed may lie between
	exRotation = "no_entry"     // the report names neither A nor all it knows
	exMasked   = "too_soon"     // the report (or a relay) came too soon after the frame to tell
	exRelay    = "relay_unknown"
	exAnomaly  = "anomaly"
)

// minF is the least probability that a frame not lost shows as heard, for
// a report to count.
const minF = 0.5

// window is what a pass needs: the guard, and the latencies of frames
// heard directly (ms, sorted), whose distribution says how likely a frame
// was to arrive in time.
type window struct {
	guard float64 // ms
	dist  latDist
	clean bool // only reports past the guard that no relay could have touched
}

// cdf is the probability that a frame not lost arrives within m ms.
func (w window) cdf(m float64) float64 {
	if m >= w.guard {
		return 1
	}
	return w.mass(math.Inf(-1), m)
}

// mass is the probability that a frame not lost arrives in (a, b] ms.
func (w window) mass(a, b float64) float64 {
	if b <= a {
		return 0
	}
	return w.dist.cdf(b) - w.dist.cdf(a)
}

// run goes over B's reports once.
func (e *pairEst) run(w window) (out []sample, reports int, ex map[string]int) {
	A, B := e.boards[e.a], e.boards[e.b]
	ex = map[string]int{}
	for k := 1; k < len(B.hbs); k++ {
		rep, prev := B.hbs[k], B.hbs[k-1]
		reports++
		if prev.Incarnation != rep.Incarnation || prev.Seq+1 != rep.Seq {
			ex[exGap]++ // a report of B's we did not see may lie between
			continue
		}
		// j: A's last heartbeat sent before the report.
		i := sort.Search(len(A.hbs), func(i int) bool { return A.hbs[i].at >= rep.at }) - 1
		if i < 0 || i+1 >= len(A.hbs) {
			ex[exTiming]++
			continue
		}
		j, next := A.hbs[i], A.hbs[i+1]
		if next.Incarnation != j.Incarnation || next.Seq != j.Seq+1 {
			ex[exGap]++ // A may have sent one we did not see, or rebooted
			continue
		}
		if prev.at >= j.at {
			// Not B's first report after j: its earlier one settled j,
			// and could have relayed it to the others.
			ex[exTiming]++
			continue
		}
		if e.blind(j.at, rep.at) {
			ex[exGap]++ // a relay the capture lacks could have come
			continue
		}
		s, why := e.settle(w, j, rep)
		if why == "" && s.f < minF {
			why = exMasked
		}
		if why != "" {
			ex[why]++
			continue
		}
		out = append(out, s)
	}
	return out, reports, ex
}

// blind reports whether a board other than A and B may have sent a
// heartbeat the capture lacks in (from, to].
func (e *pairEst) blind(from, to int64) bool {
	for i, c := range e.boards {
		if i != e.a && i != e.b && c.blindIn(from, to) {
			return true
		}
	}
	return false
}

// settle reads B's report rep about A's heartbeat j: heard (and when) or
// not, by when, or why it cannot tell.
func (e *pairEst) settle(w window, j, rep *hb) (sample, string) {
	A, B := e.boards[e.a], e.boards[e.b]
	u := ms(rep.at - j.at)
	s := sample{inc: j.Incarnation, seq: j.Seq, lat: math.NaN(), m: u}
	if w.clean && s.m < w.guard {
		return s, exMasked
	}
	entry, ok := find(rep.Witnesses, A.ip)
	if !ok && len(rep.Witnesses) >= B.maxWit {
		return s, exRotation // a full list: A may just not be in this one
	}
	// Relays: other boards' heartbeats that report j, sent between j and
	// the report. B takes the first news of j it gets, its own frame or a
	// relay, and reports that one's time.
	var relayAges []uint32
	for _, c := range j.carriers {
		if c.board == e.b || c.board == e.a || c.hb.at <= j.at || c.hb.at > rep.at {
			continue
		}
		if w.clean {
			return s, exRelay
		}
		if c.age == math.MaxUint16 {
			return s, exRelay
		}
		C := e.boards[c.board]
		ce, ok := find(rep.Witnesses, C.ip)
		switch {
		case !ok && len(rep.Witnesses) >= B.maxWit:
			return s, exRelay
		case !ok, ce.Incarnation < c.hb.Incarnation,
			ce.Incarnation == c.hb.Incarnation && ce.Seq < c.hb.Seq:
			continue // B never got that heartbeat: no relay
		case ce.Incarnation > c.hb.Incarnation || ce.Seq > c.hb.Seq || ce.AgeMS == math.MaxUint16:
			return s, exRelay // B heard a later one: when it heard this one is lost
		}
		// B heard the relay ce.AgeMS ago (and up to 1 ms more), and set
		// j's time to that less the relay's age: its report says
		// ce.AgeMS + c.age exactly if the relay came first. Past then,
		// the frame itself would have come second.
		relayAges = append(relayAges, uint32(ce.AgeMS)+uint32(c.age))
		s.m = min(s.m, u-float64(ce.AgeMS)-0.5)
	}
	// A frame that came first shows as heard unless its age happens to be
	// a relay's: take those milliseconds, (u-age-1, u-age], out.
	slices.Sort(relayAges)
	relayAges = slices.Compact(relayAges)
	s.full = s.m >= w.guard
	if s.m < u {
		// The first relay came within a millisecond of s.m, uniformly:
		// the chance that the frame beat it is F averaged over it.
		for _, d := range [...]float64{-0.4, -0.2, 0, 0.2, 0.4} {
			s.f += w.cdf(min(s.m+d, u)) / 5
		}
	} else {
		s.f = w.cdf(s.m)
	}
	for _, age := range relayAges {
		if lost := w.mass(u-float64(age)-1, min(u-float64(age), s.m)); lost > 1e-6 {
			s.f -= lost
			s.full = false
		}
	}
	switch {
	case !ok, entry.Incarnation < j.Incarnation,
		entry.Incarnation == j.Incarnation && entry.Seq < j.Seq:
		return s, "" // B knows nothing as new as j
	case entry.Incarnation > j.Incarnation || entry.Seq > j.Seq:
		return s, exAnomaly // newer than anything A had sent
	}
	if slices.Contains(relayAges, uint32(entry.AgeMS)) {
		return s, "" // B has j from a relay, or so it looks
	}
	s.heard = true
	if entry.AgeMS != math.MaxUint16 {
		// B heard j between rep - (AgeMS+1) ms and rep - AgeMS ms: the
		// middle, with an error uniform within ±0.5 ms.
		s.lat = u - float64(entry.AgeMS) - 0.5
		if s.lat < -1 {
			return s, exAnomaly
		}
	}
	return s, ""
}

func find(ws []node.Witness, ip node.Addr) (node.Witness, bool) {
	for _, w := range ws {
		if w.IP == ip {
			return w, true
		}
	}
	return node.Witness{}, false
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// estimate finds the guard and the latencies of frames heard directly
// from the reports past the guard that no relay touched, then reads every
// report it can with them.
func (e *pairEst) estimate(A, B *board, opt Options) Pair {
	pr := Pair{From: A.Name, To: B.Name}
	period := A.Period
	if period <= 0 {
		period = time.Second
	}
	limit := ms(int64(period)) * 0.9
	w := window{guard: ms(int64(period)) * 0.3, clean: true}
	// The guard must pass (nearly) every frame that arrives: start at
	// 30% of the period and move it to the 99.9th percentile of the
	// latencies seen, plus 2 ms, until it settles.
	capped := false
	settle := func(lat []float64) bool {
		if len(lat) < 20 {
			return true
		}
		w.dist = fitLatency(lat)
		g := max(w.dist.quantile(0.999)+2, 2)
		if capped = g > limit; capped {
			g = limit
		}
		done := math.Abs(g-w.guard) < 1
		w.guard = g
		return done
	}
	for range 6 {
		s, _, _ := e.run(w)
		if settle(unmasked(s)) {
			break
		}
	}
	w.clean = false
	var samples []sample
	var ex map[string]int
	// Then over every report, with the latencies refitted from each pass
	// for the next, until the guard settles and the fit used had most of
	// the latencies there are (those of the reports no relay touched can
	// be few).
	used := w
	for range 5 {
		used = w
		samples, pr.Reports, ex = e.run(used)
		lat := unmasked(samples)
		if settle(lat) && 2*used.dist.n >= len(lat) {
			break
		}
	}
	w = used
	e.samples, e.window = samples, w
	pr.Guard = time.Duration(w.guard * 1e6)
	if capped {
		pr.Warning = fmt.Sprintf("latencies reach %v, 90%% of %s's heartbeat period: slower frames count as lost, so loss and bursts are overstated; capture with a longer heartbeat",
			pr.Guard.Round(time.Millisecond), A.Name)
	}
	pr.Excluded = ex
	pr.Samples = len(samples)
	for _, s := range samples {
		if !s.heard {
			pr.Lost++
		}
	}
	if pr.Samples < opt.MinSamples {
		if pr.Excluded[exRotation] > pr.Reports/2 {
			pr.Warning = pr.To + "'s heartbeats seldom name " + pr.From + " (their witness lists are full of others)"
		}
		return pr
	}
	pr.Estimated = true
	fitGilbert(&pr, samples)
	lat := unmasked(samples)
	pr.Latency = describe(lat, fitLatency(lat))
	return pr
}

// unmasked are the latencies of the frames heard whose reports came past
// the guard, with no relay in the way: they are not cut short.
func unmasked(s []sample) []float64 {
	var out []float64
	for _, x := range s {
		if x.heard && x.full && !math.IsNaN(x.lat) {
			out = append(out, x.lat)
		}
	}
	slices.Sort(out)
	return out
}
