package repl

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
)

// LineReader yields input lines without their line end; io.EOF ends the
// input. *readline.Instance has this method.
type LineReader interface {
	Readline() (string, error)
}

// Loop feeds a Session from a LineReader.
type Loop struct {
	In      LineReader
	Session *Session
	// CommandContext derives the context of each command (the terminal
	// REPL cancels it on Ctrl-C); nil runs commands under the loop's ctx.
	CommandContext func(context.Context) (context.Context, context.CancelFunc)
}

// Run reads and runs lines until EOF or quit. A line that fails to parse or
// prints ERROR does not stop the loop; failed reports whether any did
// (NOT_FOUND is an answer, not a failure). err is a read error.
func (l Loop) Run(ctx context.Context) (failed bool, err error) {
	for {
		line, err := l.In.Readline()
		if errors.Is(err, io.EOF) {
			return failed, nil
		}
		if err != nil {
			return failed, err
		}
		err = l.runLine(ctx, line)
		if errors.Is(err, ErrQuit) {
			return failed, nil
		}
		failed = failed || err != nil
	}
}

func (l Loop) runLine(ctx context.Context, line string) error {
	cmd, err := Parse(line)
	if err != nil {
		_, _ = io.WriteString(l.Session.out, err.Error()+"\n")
		return err
	}
	if l.CommandContext != nil {
		var cancel context.CancelFunc
		ctx, cancel = l.CommandContext(ctx)
		defer cancel()
	}
	return l.Session.Run(ctx, cmd)
}

// NewLineReader reads lines from r (a pipe or file); a last line without a
// newline still counts. Lines have no length limit, as values may be large.
func NewLineReader(r io.Reader) LineReader {
	return &lineReader{r: bufio.NewReader(r)}
}

type lineReader struct{ r *bufio.Reader }

func (l *lineReader) Readline() (string, error) {
	line, err := l.r.ReadString('\n')
	if errors.Is(err, io.EOF) && line != "" {
		err = nil
	}
	return strings.TrimSuffix(line, "\n"), err
}
