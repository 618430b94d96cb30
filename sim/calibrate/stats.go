package calibrate

import (
	"math"
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
	sum, acc := 0.0, 1.0 // the likelihood is acc·e^sum: one Log a few hundred samples
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

// describe summarises the latencies (sorted, in ms).
func describe(lat []float64) Latency {
	n := len(lat)
	if n == 0 {
		return Latency{}
	}
	d := Latency{Samples: n, Min: lat[0], Max: lat[n-1], P50: quantile(lat, 0.5), P90: quantile(lat, 0.9), P99: quantile(lat, 0.99)}
	sum := 0.0
	for _, x := range lat {
		sum += x
	}
	d.Mean = sum / float64(n)
	v := 0.0
	for _, x := range lat {
		v += (x - d.Mean) * (x - d.Mean)
	}
	if n > 1 {
		v /= float64(n - 1)
	}
	d.StdDev = math.Sqrt(max(0, v-1.0/12))
	sigma := math.Max(d.StdDev, 1e-3)
	w := math.Sqrt(3) * sigma
	d.KSNormal = ks(lat, func(x float64) float64 { return normalQ(x, d.Mean, sigma) })
	d.KSUniform = ks(lat, func(x float64) float64 { return uniformQ(x, d.Mean-w, d.Mean+w) })
	switch {
	case d.StdDev < 0.3:
		// Under the quantisation's own spread (0.29 ms): no shape to tell.
		d.Jitter = d.StdDev
	case d.KSNormal <= d.KSUniform:
		d.Dist, d.Jitter = "normal", d.StdDev
	default:
		d.Dist, d.Jitter = "uniform", w
	}
	return d
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
