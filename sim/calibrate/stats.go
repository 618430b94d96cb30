package calibrate

import (
	"math"
	"sort"
)

// fitGilbert fits the Gilbert model (no loss in Good, all in Bad) to the
// samples by maximum likelihood: a hidden Markov model whose state is the
// frame's fate, seen through the reports. A frame lost is never heard; a
// frame not lost is heard with probability f, the chance that it arrived
// before the report (or a relay) came, 1 past the guard. Samples are
// irregular steps of the chain: the d-step transitions are
//
//	P(lost after lost, d)  = pi + (1-pi)·Lambda^d
//	P(lost after heard, d) = pi·(1 - Lambda^d)
//
// so gaps between samples cost information but add no bias. The standard
// errors come from the curvature of the likelihood at its maximum.
func fitGilbert(pr *Pair, samples []sample) {
	n := len(samples)
	if pr.Lost == 0 {
		// No loss seen in n samples: by the rule of three, loss under
		// 3/n with 95% confidence, which ±1.96 LossSE then says.
		pr.P, pr.R, pr.BurstLength = 0, 1, 1
		pr.LossSE, pr.LambdaSE, pr.BurstSE = 3/float64(n)/1.96, -1, -1
		return
	}
	ll := func(pi, l float64) float64 { return logLik(samples, pi, l) }
	lamLo := func(pi float64) float64 { return 1 - 1/max(pi, 1-pi) + 1e-9 }
	const lamHi = 1 - 1e-9
	// Start from the share of frames not heard, less those merely late.
	pi, l := 0.0, 0.0
	for _, s := range samples {
		if !s.heard {
			pi += 1
		}
		if s.f < 1 {
			pi -= 1 - s.f
		}
	}
	pi = min(max(pi/float64(n), 1e-4), 1-1e-4)
	// λ on a grid first, then Newton's method on both from there.
	best := math.Inf(-1)
	for i := 0; i <= 50; i++ {
		x := lamLo(pi) + (lamHi-lamLo(pi))*float64(i)/50
		if v := ll(pi, x); v > best {
			best, l = v, x
		}
	}
	pi, l = newton(ll, pi, l, lamLo, lamHi)
	pr.Loss, pr.Lambda = pi, l
	// Observed information: the Hessian of -log L, by differences.
	_, _, fpp, fpl, fll := derivatives(ll, pi, l, lamLo, lamHi)
	a, b, c := -fpp, -fpl, -fll // information matrix [[a b] [b c]]
	det := a*c - b*b
	varP, varL, cov := math.Inf(1), math.Inf(1), 0.0
	if a > 0 && c > 0 && det > 0 {
		varP, varL, cov = c/det, a/det, -b/det
	}
	pr.LossSE, pr.LambdaSE = math.Sqrt(varP), math.Sqrt(varL)
	pr.P, pr.R = pi*(1-l), (1-pi)*(1-l)
	pr.BurstLength = 1 / pr.R
	// b = 1/((1-pi)(1-Lambda)): db/dpi = b/(1-pi), db/dLambda = b/(1-Lambda).
	gp, gl := pr.BurstLength/(1-pi), pr.BurstLength/(1-l)
	pr.BurstSE = math.Sqrt(max(0, gp*gp*varP+gl*gl*varL+2*gp*gl*cov))
	if math.IsInf(varL, 0) || math.IsNaN(varL) {
		// A flat likelihood, or its maximum at a bound (no bursts to
		// speak of, or a handful of losses): no curvature to go by.
		pr.LambdaSE, pr.BurstSE = -1, -1
		pr.LossSE = math.Sqrt(pi * (1 - pi) / float64(n))
	}
	pr.Bursty = pr.LambdaSE >= 0 && l > 2*pr.LambdaSE
	if !pr.Bursty {
		pr.P, pr.R = pi, 1-pi // independent losses
	}
}

// logLik is the log-likelihood of the samples under the Gilbert model
// (loss pi, correlation l): the forward algorithm, scaled.

func logLik(samples []sample, pi, l float64) float64 {
	if pi <= 0 || pi >= 1 {
		return math.Inf(-1)
	}
	// Lambda^d for the usual small gaps, without a Pow each.
	var pows [64]float64
	pows[0] = 1
	for d := 1; d < len(pows); d++ {
		pows[d] = pows[d-1] * l
	}
	sum, acc := 0.0, 1.0  // the likelihood is acc·e^sum: one Log a few hundred samples
	var good, bad float64 // P(state | what came before), then after
	var last sample
	for i, s := range samples {
		if i == 0 || s.inc != last.inc || s.seq <= last.seq {
			good, bad = 1-pi, pi // a new chain: the stationary state
		} else {
			var ld float64
			if d := s.seq - last.seq; d < uint32(len(pows)) {
				ld = pows[d]
			} else {
				ld = math.Pow(l, float64(d))
			}
			toBad := good*pi*(1-ld) + bad*(pi+(1-pi)*ld)
			good, bad = 1-toBad, toBad
		}
		// Emission: heard only if not lost and in time.
		if s.heard {
			good, bad = good*s.f, 0
		} else {
			good *= 1 - s.f
		}
		z := good + bad
		if z <= 0 {
			return math.Inf(-1)
		}
		if acc *= z; acc < 1e-250 {
			sum += math.Log(acc)
			acc = 1
		}
		good, bad = good/z, bad/z
		last = s
	}
	return sum + math.Log(acc)
}

// derivatives of f at (p, l) by central differences, with steps that
// stay inside 0 < p < 1 and lamLo(p) < l < lamHi.
func derivatives(f func(p, l float64) float64, p, l float64, lamLo func(float64) float64, lamHi float64) (gp, gl, hpp, hpl, hll float64) {
	hp := min(1e-4, p/4, (1-p)/4)
	hl := 1e-4
	if room := min(lamHi-l, l-max(lamLo(p-hp), lamLo(p+hp))); room < 2*hl {
		hl = max(room/2, 1e-8)
	}
	f0 := f(p, l)
	fp1, fm1 := f(p+hp, l), f(p-hp, l)
	fl1, flm := f(p, l+hl), f(p, l-hl)
	gp, gl = (fp1-fm1)/(2*hp), (fl1-flm)/(2*hl)
	hpp = (fp1 - 2*f0 + fm1) / (hp * hp)
	hll = (fl1 - 2*f0 + flm) / (hl * hl)
	hpl = (f(p+hp, l+hl) - f(p+hp, l-hl) - f(p-hp, l+hl) + f(p-hp, l-hl)) / (4 * hp * hl)
	return
}

// newton maximises f(p, l) from (p, l): Newton steps where the Hessian
// is negative definite, gradient steps otherwise, halved until f grows and
// the point stays feasible.
func newton(f func(p, l float64) float64, p, l float64, lamLo func(float64) float64, lamHi float64) (float64, float64) {
	fx := f(p, l)
	for range 50 {
		gp, gl, hpp, hpl, hll := derivatives(f, p, l, lamLo, lamHi)
		det := hpp*hll - hpl*hpl
		var dp, dl float64
		if hpp < 0 && det > 0 {
			dp = -(hll*gp - hpl*gl) / det
			dl = -(hpp*gl - hpl*gp) / det
		} else {
			// Up the gradient, scaled to a small step.
			norm := math.Hypot(gp, gl)
			if norm == 0 {
				break
			}
			dp, dl = 0.01*gp/norm*p, 0.01*gl/norm
		}
		moved := false
		for t := 1.0; t > 1e-6; t /= 2 {
			np, nl := p+t*dp, l+t*dl
			if np <= 0 || np >= 1 || nl >= lamHi || nl <= lamLo(np) {
				continue
			}
			if v := f(np, nl); v > fx {
				moved = v-fx > 1e-9 && (math.Abs(np-p) > 1e-9 || math.Abs(nl-l) > 1e-8)
				p, l, fx = np, nl, v
				break
			}
		}
		if !moved {
			break
		}
	}
	return p, l
}

// describe summarises the latencies: the heard frames' interval
// midpoints (sorted, ms) and the distribution fitted to their intervals.
func describe(mid []float64, d latDist) Latency {
	n := len(mid)
	if n == 0 {
		return Latency{}
	}
	l := Latency{Samples: n, P50: d.quantile(0.5), P90: d.quantile(0.9), P99: d.quantile(0.99)}
	l.Min, l.Max = d.support()
	l.Mean, l.StdDev = d.moments()
	sigma := math.Max(l.StdDev, 1e-3)
	w := math.Sqrt(3) * sigma
	// The shapes are compared on what was seen: the midpoints, against
	// each model with the quantisation's error added.
	l.KSNormal = ks(mid, func(x float64) float64 { return normalQ(x, l.Mean, sigma) })
	l.KSUniform = ks(mid, func(x float64) float64 { return uniformQ(x, l.Mean-w, l.Mean+w) })
	switch {
	case l.StdDev < 0.3:
		// Under the quantisation's own spread (0.29 ms): no shape to tell.
		l.Jitter = l.StdDev
	case l.KSNormal <= l.KSUniform:
		l.Dist, l.Jitter = "normal", l.StdDev
	default:
		l.Dist, l.Jitter = "uniform", w
	}
	return l
}

// ks is the Kolmogorov–Smirnov distance between sorted samples and a CDF.
func ks(sorted []float64, cdf func(float64) float64) float64 {
	n := float64(len(sorted))
	dist := 0.0
	for i, x := range sorted {
		f := cdf(x)
		dist = max(dist, f-float64(i)/n, float64(i+1)/n-f)
	}
	return dist
}

// The quantisation of AgeMS adds an error uniform in ±0.5 ms to every
// latency: normalQ and uniformQ are the CDFs of a normal and of a uniform
// delay with that error added.
const half = 0.5

// normalQ is the CDF at x of N(mu, sigma²) plus U(-half, half).
func normalQ(x, mu, sigma float64) float64 {
	// ∫Φ = zΦ(z) + φ(z).
	G := func(z float64) float64 {
		return z*0.5*math.Erfc(-z/math.Sqrt2) + math.Exp(-z*z/2)/math.Sqrt(2*math.Pi)
	}
	return sigma / (2 * half) * (G((x+half-mu)/sigma) - G((x-half-mu)/sigma))
}

// uniformQ is the CDF at x of U(a, b) plus U(-half, half).
func uniformQ(x, a, b float64) float64 {
	H := func(y float64) float64 { // ∫ of U(a, b)'s CDF
		switch {
		case y <= a:
			return 0
		case y >= b:
			return (b-a)/2 + (y - b)
		}
		return (y - a) * (y - a) / (2 * (b - a))
	}
	return (H(x+half) - H(x-half)) / (2 * half)
}

// emIters is how many EM iterations fitLatency makes. The EM's limit
// (the NPMLE) overfits: it piles the mass onto a few points, off by 0.07
// in the CDF for a uniform jitter of 1,000 frames. Stopped after 30 steps
// from the intervals spread evenly, it is within 0.01 to 0.03 for uniform
// and normal jitters of 1,000 to 10,000 frames, where the midpoints'
// empirical CDF is off by 0.06 at a uniform's edges (TestLatencyFit).
const emIters = 30

// latDist is a latency distribution on a grid of small bins: the
// nonparametric maximum-likelihood estimate (Turnbull's) from the
// heard frames' 1 ms intervals. A frame heard AgeMS ms before a report
// sent u ms after it was heard in (u-AgeMS-1, u-AgeMS]: an interval at a
// phase that varies from frame to frame, so together they pin the
// distribution down finer than a millisecond, which their midpoints
// (smeared by ±0.5 ms) do not.
type latDist struct {
	lo, step float64
	p        []float64 // mass of each bin
	cum      []float64 // cum[k]: mass of bins before k; len(p)+1
	n        int
}

// fitLatency estimates the distribution from the heard frames' interval
// midpoints (sorted, ms): each frame lies within ±0.5 ms of its own.
func fitLatency(mid []float64) latDist {
	d := latDist{n: len(mid)}
	if len(mid) == 0 {
		return d
	}
	lo, hi := mid[0]-half, mid[len(mid)-1]+half
	d.lo, d.step = lo, max(0.05, (hi-lo)/4000)
	nb := int(math.Ceil((hi-lo)/d.step)) + 1
	// Each interval as a range of bins [from, to): those whose centre
	// lies in it. Frames with the same range are one, weighted.
	type rng struct{ from, to int32 }
	count := map[rng]float64{}
	for _, x := range mid {
		a := int32(math.Ceil((x - half - lo) / d.step))
		b := int32(math.Ceil((x + half - lo) / d.step))
		a, b = max(a, 0), min(b, int32(nb))
		if b <= a {
			b = min(a+1, int32(nb))
			a = b - 1
		}
		count[rng{a, b}]++
	}
	type group struct {
		rng
		w float64 // the share of frames with this range
	}
	groups := make([]group, 0, len(count))
	for r, c := range count {
		groups = append(groups, group{r, c / float64(len(mid))})
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].from < groups[j].from })
	d.p = make([]float64, nb)
	next := make([]float64, nb)
	for _, g := range groups { // start: each frame spread over its interval
		w := g.w / float64(g.to-g.from)
		for k := g.from; k < g.to; k++ {
			d.p[k] += w
		}
	}
	// EM: each frame's mass goes to the bins of its interval in proportion
	// to their current mass.
	for range emIters {
		clear(next)
		for _, g := range groups {
			z := 0.0
			for k := g.from; k < g.to; k++ {
				z += d.p[k]
			}
			if z <= 0 {
				continue
			}
			w := g.w / z
			for k := g.from; k < g.to; k++ {
				next[k] += d.p[k] * w
			}
		}
		diff := 0.0
		for k := range next {
			diff = max(diff, math.Abs(next[k]-d.p[k]))
		}
		d.p, next = next, d.p
		if diff < 1e-9 {
			break
		}
	}
	d.cum = make([]float64, nb+1)
	for k, x := range d.p {
		d.cum[k+1] = d.cum[k] + x
	}
	return d
}

// cdf is P(latency <= x).
func (d latDist) cdf(x float64) float64 {
	if d.n == 0 {
		return 0
	}
	// Bin k holds [lo+(k-0.5)step, lo+(k+0.5)step): spread evenly.
	pos := (x-d.lo)/d.step + 0.5
	k := int(math.Floor(pos))
	switch {
	case k < 0:
		return 0
	case k >= len(d.p):
		return 1
	}
	return d.cum[k] + d.p[k]*(pos-float64(k))
}

// quantile is the x with cdf(x) = q.
func (d latDist) quantile(q float64) float64 {
	if d.n == 0 {
		return math.NaN()
	}
	k := sort.Search(len(d.p), func(k int) bool { return d.cum[k+1] >= q })
	if k >= len(d.p) {
		k = len(d.p) - 1
	}
	frac := 0.0
	if d.p[k] > 0 {
		frac = (q - d.cum[k]) / d.p[k]
	}
	return d.lo + (float64(k)-0.5+min(max(frac, 0), 1))*d.step
}

// moments are the mean and standard deviation.
func (d latDist) moments() (mean, sd float64) {
	for k, x := range d.p {
		mean += x * (d.lo + float64(k)*d.step)
	}
	v := 0.0
	for k, x := range d.p {
		c := d.lo + float64(k)*d.step - mean
		v += x * c * c
	}
	return mean, math.Sqrt(v + d.step*d.step/12)
}

// support is the first and last bin with mass, as latencies.
func (d latDist) support() (lo, hi float64) {
	first, last := -1, -1
	for k, x := range d.p {
		if x > 1e-9 {
			if first < 0 {
				first = k
			}
			last = k
		}
	}
	if first < 0 {
		return math.NaN(), math.NaN()
	}
	return d.lo + (float64(first)-0.5)*d.step, d.lo + (float64(last)+0.5)*d.step
}
