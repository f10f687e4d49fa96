package sim

// maxSkewMs bounds how far a node's wall clock is from true time, so two
// servers' clocks differ by at most twice that (DESIGN §6: 100 ms).
const maxSkewMs = 50

// clock is a node's view of time: a monotonic clock that runs at
// (1 + drift) of true time from an offset, and a wall clock off true time
// by wallOff (skew). Drift stays within the protocol's bound ε.
type clock struct {
	monoOff  int64
	driftPPM int64
	wallOff  int64
}

func (c clock) mono(t int64) int64 { return c.monoOff + t + t/1_000_000*c.driftPPM }

// trueAfter converts a span of this clock into true time.
func (c clock) trueSpan(d int64) int64 { return d * 1_000_000 / (1_000_000 + c.driftPPM) }

func (c clock) wallMs(t int64) int64 { return (t+c.wallOff)/1_000_000 + 1_700_000_000_000 }
