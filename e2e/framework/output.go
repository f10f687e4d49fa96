package framework

import (
	"bytes"
	"strings"
	"sync"
)

// maxPartialLine bounds a line without newline kept in a lineWriter.
const maxPartialLine = 64 << 10

// lineWriter cuts a byte stream into lines and hands each to emit.
type lineWriter struct {
	mu   sync.Mutex // guards buf; serialises emit
	buf  []byte
	emit func(line string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxPartialLine {
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// flush emits a last line that had no newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

// output records a process's lines and logs them while the test runs.
type output struct {
	mu      sync.Mutex // guards every field
	stdout  []string
	stderr  []string
	changed chan struct{}                    // closed and replaced whenever a line arrives
	logf    func(format string, args ...any) // nil once detached
	prefix  string
}

func newOutput(prefix string, logf func(string, ...any)) *output {
	return &output{changed: make(chan struct{}), logf: logf, prefix: prefix}
}

func (o *output) add(stream, line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if stream == "stdout" {
		o.stdout = append(o.stdout, line)
	} else {
		o.stderr = append(o.stderr, line)
	}
	close(o.changed)
	o.changed = make(chan struct{})
	if o.logf != nil {
		o.logf("[%s %s] %s", o.prefix, stream[3:], line)
	}
}

// detach stops logging: t.Log must not be called after the test ends.
func (o *output) detach() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.logf = nil
}

// snapshot returns copies of the lines so far and a channel closed at the
// next line.
func (o *output) snapshot() (stdout, stderr []string, changed <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.stdout...), append([]string(nil), o.stderr...), o.changed
}
