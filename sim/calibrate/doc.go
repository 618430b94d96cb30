// Package calibrate estimates link profiles from a capture of real boards:
// per ordered pair of boards, loss, Gilbert burst parameters and one-way
// latency, written as the network section of a scenario (Profile.YAML).
//
//	c, err := calibrate.Read(f)                // a pcapng capture
//	p, err := calibrate.Estimate(c, calibrate.Options{Source: "lab.pcapng"})
//	os.Stdout.WriteString(p.YAML())
//
// # What a capture shows
//
// A sniffer sees every heartbeat once, when it is on the air: its
// timestamp is the send time. A heartbeat of board B carries, for each peer
// A it knows, the newest of A's sequence numbers it knows and how long ago,
// in whole milliseconds, it learnt it (node.Witness: Seq and AgeMS, taken
// when B builds the heartbeat). So B's report at time T says: "of A's
// heartbeats, the newest I have is s, and I got it at T - AgeMS". Whether B
// heard A's other heartbeats, it does not say.
//
// # Which reports tell a heartbeat's fate
//
// For each report of B, take j, A's last heartbeat sent before it. B's
// report shows j if and only if B has j by T; it shows an older one
// otherwise, since nothing newer than j existed. The choice of (j, report)
// depends on send times only, never on what was lost, so the samples are
// an unbiased draw of A's heartbeats: the estimator keeps B's first report
// after each j (so B's earlier reports cannot have passed j to anyone), and
// only when the capture holds A's next heartbeat after the report (so no
// heartbeat the sniffer missed can be the newest).
//
// "B has j" is not "B heard j": a board also takes news of j from the
// witnesses of a third board C that heard it (a relay), and then reports
// C's time for it, less the relay's age. When B's report names C's
// heartbeat that carried j, a relay is recognised exactly: B's age for A is
// then B's age for C plus C's age for A. A frame heard directly whose age
// happens to be a relay's is taken for the relay: the likelihood below
// allows for it, with the chance that a frame's latency falls in that
// millisecond. When B heard a later heartbeat of C's, which hides when it
// got the relay, the report is left out (relay_unknown); so is a report
// when a board may have sent a heartbeat the capture lacks between j and
// the report (not_captured): a relay the capture cannot show. These choices
// depend on the other boards' frames only: unbiased as long as a sender's
// frames are lost independently at different receivers.
//
// So each sample is a heartbeat j with a time m: how long j had, after it
// was sent, to reach B before the report (or before a relay told B of it
// first). If j was not lost, B's report shows it heard with probability f:
// F(m), F the CDF of the pair's latency, less the chance of an age that
// looks like a relay's; if it was lost, never. F comes from the reports that
// came later than the guard G (the latencies' 99.9th percentile plus 2 ms,
// found by iteration) with no relay in the way: for them f = 1, their
// latencies are not cut short, and they alone give the latency
// distribution. Reports with f < 0.5 are left out (too_soon).
//
// # Loss and bursts
//
// The fates of A's heartbeats at B are taken to be the Gilbert chain that
// netsim's Burst and a scenario's burst_length describe: loss pi and a
// correlation Lambda = 1-P-R between consecutive frames. The samples see the
// chain at irregular steps d (heartbeats apart), through F: a hidden Markov
// model whose d-step transitions are P(lost | lost) = pi + (1-pi)·Lambda^d
// and P(lost | heard) = pi·(1-Lambda^d). Estimate maximises its
// likelihood over (pi, Lambda); the mean burst is 1/R = 1/((1-pi)(1-Lambda)).
// The standard errors come from the likelihood's curvature, so they allow
// for the correlation of bursts. Reboots (a new incarnation) start a new
// chain.
//
// # Latency and its resolution
//
// A frame j heard directly was heard in (T - (AgeMS+1) ms, T - AgeMS ms]:
// its latency lies in a 1 ms interval. The intervals' phases vary from frame
// to frame (T is the report's time, to the nanosecond), so together they
// pin the distribution down finer than a millisecond: the latency
// distribution is Turnbull's nonparametric maximum-likelihood estimate for
// interval-censored data, by EM on a 0.05 ms grid, stopped after 30 steps
// from the intervals spread evenly (the limit overfits, piling the mass onto
// a few points). Its CDF is within 0.01 to 0.03 of the truth for 1,000 to
// 10,000 frames of uniform or normal jitter, where the midpoints' empirical
// CDF is off by 0.06 at a uniform's edges (TestLatencyFit). The same
// distribution gives F above. The jitter's shape (normal or uniform) is
// chosen by the Kolmogorov–Smirnov distance between the midpoints and each
// model with the quantisation's error added; below 0.3 ms of standard
// deviation no shape is written.
//
// # What it cannot tell
//
// See Profile.Notes (notes.go): the sender's uplink is not told apart from
// the rest of the path; heartbeats the sniffer missed are counted apart
// (Board.NotCaptured) and belong to no pair; frames later than the guard
// count as lost, so a latency that reaches the heartbeat period (a Pico W
// saving power delays broadcasts by up to a beacon interval, 102 ms: fine
// with the default 1 s heartbeat, not with 100 ms) overstates loss, which
// Pair.Warning says; duplicates, reordering, corruption, rate limits and
// latency tails as a parameter of their own are not estimated. Losses
// common to all receivers of a sender break the independence the relay
// handling assumes and overstate loss. Where relays' times fall among the
// direct latencies (large clusters whose links are alike), the fitted F's
// error at a sharp edge of the latency distribution shows: about -0.05 pp
// of loss in a 20-board cluster at 5% loss.
//
// Keyed captures: a keyed frame is the frame with a 16-byte tag after it;
// Read decodes the frame before the tag. Without ReadOptions.Key the tags
// are not checked (a forged frame would count); with it, frames whose tag
// does not verify, and unkeyed frames, are dropped and counted.
//
// Read ignores pcapng comments: a sniffer's capture has none, and netsim's
// (who missed a frame, and why) are the ground truth the tests compare to.
package calibrate
