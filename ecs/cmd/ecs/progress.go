package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/schollz/progressbar/v3"
)

// progress shows a rebalancing round as it goes: a bar on a terminal, a
// plain line (at most one a second, when it changes) otherwise. It counts
// the bytes and keys learners copied, also within a partition's move, and
// takes the ETA from the rate of the last rateSpan.
type progress struct {
	what  string
	since uint64 // the epoch the request took effect: earlier rounds are not shown
	out   io.Writer
	bar   *progressbar.ProgressBar // nil when out is not a terminal
	rate  rateWindow
	last  string
	at    time.Time
	now   func() time.Time
}

// rateSpan is how far back the ETA's rate looks.
const rateSpan = 10 * time.Second

func newProgress(what string, since uint64, out *os.File) *progress {
	p := &progress{what: what, since: since, out: out, now: time.Now}
	if fi, err := out.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		p.bar = progressbar.NewOptions(1000, progressbar.OptionSetWriter(out), progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false), progressbar.OptionClearOnFinish(), progressbar.OptionShowDescriptionAtLineEnd())
	}
	return p
}

func (p *progress) update(st *opclient.Status) {
	m := st.Moves.Since(p.since)
	now := p.now()
	p.rate.add(sample{at: now, bytes: m.CopiedBytes, done: m.Done})
	line := fmt.Sprintf("%s: %s", p.what, describe(st, m, p.rate.eta(m)))
	if p.bar != nil {
		p.bar.Describe(line)
		_ = p.bar.Set(permille(m))
		return
	}
	if line != p.last && now.Sub(p.at) >= time.Second {
		fmt.Fprintln(p.out, line)
		p.last, p.at = line, now
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// describe is one progress line's text.
func describe(st *opclient.Status, m opclient.MoveStatus, eta time.Duration) string {
	e := "unknown"
	if eta >= 0 {
		e = eta.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("epoch %d, %d/%d partitions moved, %s in %s keys copied, %d copying, %d under-replicated, ETA %s",
		st.Epoch, m.Done, m.Total, humanize.Bytes(m.CopiedBytes), humanize.Comma(int64(m.CopiedKeys)), st.Learners, st.UnderReplicated, e)
}

// permille is how far the round is, in thousandths: by bytes when there
// is an estimate of what is left, else by partitions.
func permille(m opclient.MoveStatus) int {
	if m.Pending == 0 {
		return 1000
	}
	if m.BytesLeft > 0 {
		return int(1000 * float64(m.CopiedBytes) / float64(m.CopiedBytes+m.BytesLeft))
	}
	if m.Total == 0 {
		return 0
	}
	return 1000 * m.Done / m.Total
}

type sample struct {
	at    time.Time
	bytes uint64
	done  int
}

// rateWindow keeps the samples of the last rateSpan.
type rateWindow struct{ s []sample }

func (w *rateWindow) add(s sample) {
	w.s = append(w.s, s)
	for len(w.s) > 2 && s.at.Sub(w.s[0].at) > rateSpan {
		w.s = w.s[1:]
	}
}

// eta is the time left at the window's rate: of bytes copied when there is
// an estimate of the bytes left, else of partitions finished; -1 when the
// window saw no progress yet.
func (w *rateWindow) eta(m opclient.MoveStatus) time.Duration {
	if m.Pending == 0 {
		return 0
	}
	if len(w.s) < 2 {
		return -1
	}
	first, last := w.s[0], w.s[len(w.s)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 {
		return -1
	}
	if m.BytesLeft > 0 && last.bytes > first.bytes {
		return time.Duration(float64(m.BytesLeft) / (float64(last.bytes-first.bytes) / dt) * float64(time.Second))
	}
	if last.done > first.done {
		return time.Duration(float64(m.Pending) / (float64(last.done-first.done) / dt) * float64(time.Second))
	}
	return -1
}
