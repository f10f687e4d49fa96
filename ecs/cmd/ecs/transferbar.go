package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ecskv/ecskv/ecs/backup"
	"github.com/schollz/progressbar/v3"
)

// transferBar shows a backup or restore as it goes, as progress does a
// rebalancing round: a bar on a terminal, a plain line (at most one a
// second) otherwise.
type transferBar struct {
	what  string
	out   io.Writer
	bar   *progressbar.ProgressBar // nil when out is not a terminal
	start time.Time
	mu    sync.Mutex // guards at; update is called from several goroutines
	at    time.Time
}

func newTransferBar(what string, out *os.File) *transferBar {
	b := &transferBar{what: what, out: out, start: time.Now()}
	if fi, err := out.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		b.bar = progressbar.NewOptions(1000, progressbar.OptionSetWriter(out), progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false), progressbar.OptionClearOnFinish(), progressbar.OptionShowDescriptionAtLineEnd())
	}
	return b
}

func (b *transferBar) update(pr backup.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line := transferLine(b.what, pr, time.Since(b.start))
	if b.bar != nil {
		b.bar.Describe(line)
		_ = b.bar.Set(transferPermille(pr))
		return
	}
	if now := time.Now(); now.Sub(b.at) >= time.Second {
		fmt.Fprintln(b.out, line)
		b.at = now
	}
}

func (b *transferBar) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}

// transferLine is one progress line's text.
func transferLine(what string, pr backup.Progress, took time.Duration) string {
	return fmt.Sprintf("%s: %d/%d partitions, %s keys, %s (%s/s)", what, pr.PartsDone, pr.Parts,
		humanize.Comma(pr.Records), humanize.IBytes(uint64(pr.Bytes)), rate(pr.Bytes, took))
}

// transferPermille is how far it is, in thousandths: by bytes when the
// total is known (restore), else by partitions (backup).
func transferPermille(pr backup.Progress) int {
	switch {
	case pr.TotalBytes > 0:
		return int(1000 * pr.Bytes / pr.TotalBytes)
	case pr.Parts > 0:
		return 1000 * pr.PartsDone / pr.Parts
	}
	return 0
}
