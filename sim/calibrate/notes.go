package calibrate

// notes are what no capture of heartbeats can tell, said in every profile.
var notes = []string{
	"loss is per pair, from the frame on the air (as the sniffer saw it) to the receiver's discovery code: " +
		"the sender's uplink, the air and the receiver's radio and stack together. Heartbeats the sniffer never saw " +
		"(gaps in a board's sequence numbers) are counted per board as not_captured and belong to no pair: " +
		"the sender's uplink or the sniffer lost them, and a capture cannot tell which.",
	"latency runs from the frame on the air (the capture's timestamp) to the receiver's discovery code, " +
		"plus the receiver's delay between building its own heartbeat (when its witness ages are taken) and sending it. " +
		"No clocks need to agree: both ends are timestamps of one capture, and an age is an interval on the receiver's clock.",
	"AgeMS counts whole milliseconds: a frame heard is known to within a 1 ms interval, at a phase that varies from frame to frame. " +
		"The latency distribution is fitted to the intervals (Turnbull's estimator, smoothed), which recovers it finer than 1 ms " +
		"(percentiles within about 0.2 ms in the round-trip tests); a jitter under about 0.3 ms has no shape to tell (no distribution is written).",
	"a frame that arrives later than the pair's guard (the 99.9th percentile of its latency plus 2 ms) counts as lost. " +
		"Not estimated: latency tails as tail/tail_mean (they show in p99 instead), duplicates and reordering " +
		"(a receiver reports only the newest heartbeat it has), corruption, rate limits and queues.",
	"bursts are fitted with the Gilbert model (no loss in Good, all frames lost in Bad), which is what burst_length means " +
		"in a scenario; a Gilbert–Elliott link with some loss in both states comes out as the Gilbert model closest to it. " +
		"burst_length is written only when losses are correlated by more than two standard errors.",
	"a witness report of a heartbeat may come through another board (relayed): such reports are told apart by their ages " +
		"or left out, which assumes that a sender's frames are lost independently at different receivers. " +
		"Losses common to all receivers (the sender's own radio fading) make the profile overstate loss.",
	"a pair link replaces the receiver's link for that pair's frames: include the profile in a scenario without network-wide " +
		"loss or latency, which its pairs would otherwise not see. A pair with no impairment falls back to the receiver's link.",
}
