package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/chzyer/readline"
	"github.com/ecskv/ecskv/kvclient/repl"
	"github.com/spf13/cobra"
)

const prompt = "ecskv> "

// runREPL reads commands from the terminal with line editing and history,
// or line by line from a pipe or file without prompts.
func (a *app) runREPL(cmd *cobra.Command, _ []string) error {
	if a.isTerminal() {
		return a.interactive(cmd)
	}
	s, err := a.session(cmd, a.stdout, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	failed, err := repl.Loop{In: repl.NewLineReader(a.stdin), Session: s}.Run(cmd.Context())
	if err != nil {
		return err
	}
	if failed {
		return exitCode(2) // each failure was printed where it happened
	}
	return nil
}

func (a *app) interactive(cmd *cobra.Command) error {
	rl, err := readline.NewEx(&readline.Config{
		Prompt:       prompt,
		HistoryFile:  historyFile(),
		AutoComplete: completer(),
	})
	if err != nil {
		return err
	}
	defer rl.Close()
	s, err := a.session(cmd, rl.Stdout(), func(user string) (string, error) {
		b, err := rl.ReadPassword("Password for " + user + ": ")
		return string(b), err
	})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(rl.Stdout(), "ecskv client (cluster via %s); type help for commands, quit to leave\n", s.Target())
	loop := repl.Loop{In: promptReader{rl}, Session: s, CommandContext: interruptible}
	_, err = loop.Run(cmd.Context())
	return err
}

// interruptible lets Ctrl-C cancel a slow command instead of killing the
// REPL; at the prompt readline reads Ctrl-C itself.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt)
}

// historyFile is ~/.ecskv_history, or "" (no history) without a home
// directory; readline ignores a history file it cannot open.
func historyFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".ecskv_history")
}

func completer() readline.AutoCompleter {
	items := make([]readline.PrefixCompleterInterface, 0, len(repl.Names()))
	for _, n := range repl.Names() {
		items = append(items, readline.PcItem(n))
	}
	return readline.NewPrefixCompleter(items...)
}

// promptReader turns Ctrl-C at the prompt into an empty line (the line is
// dropped, as in a shell); Ctrl-D on an empty line is io.EOF and ends the REPL.
type promptReader struct{ rl *readline.Instance }

func (p promptReader) Readline() (string, error) {
	line, err := p.rl.Readline()
	if errors.Is(err, readline.ErrInterrupt) {
		return "", nil
	}
	return line, err
}
