package kvserver

import "time"

// syncPacer decides how long a WAL sync waits before it starts.
//
// The sync loop syncs whatever the node asked for so far (group commit). A
// server under load asks for a sync in nearly every step, and a sync that
// starts the moment the first of them asks covers that step's writes alone;
// the next steps wait for the sync after it. Held back a little, it covers
// the writes of the steps that arrive meanwhile, and what it completes (the
// watermarks, commits and answers that follow) comes in fewer, larger steps
// on every member: fewer fsyncs, steps and messages per write, which on a
// busy machine is what a write costs. An idle server's lone write is synced
// at once: waiting would only add its latency. Busy means that the sync
// before covered the writes of more than one step.
type syncPacer struct {
	delay time.Duration
	busy  bool
}

// wait is how long the next sync waits before it takes what was asked.
func (p *syncPacer) wait() time.Duration {
	if p.busy {
		return p.delay
	}
	return 0
}

// took records that a sync took what steps asked for since the last one.
func (p *syncPacer) took(steps int) { p.busy = steps > 1 }
