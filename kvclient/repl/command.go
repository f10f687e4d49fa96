package repl

import (
	"strings"
	"time"
)

// Command is one parsed line. String prints it back as a line that parses
// to the same Command.
type Command struct {
	// Name is the canonical command name ("put", "logLevel", "quit" for
	// exit); "" for a blank or comment line, which does nothing.
	Name string
	// Args are the checked arguments: put KEY VALUE; get, delete, persist,
	// ttl KEY; cas KEY OLD NEW; incr, decr KEY [DELTA] (base 10); expire
	// KEY DURATION (as time.Duration prints it); connect HOST:PORT (or
	// none); login NAME; logLevel LEVEL (lower case); help CMD (canonical
	// name, or none).
	Args []string
	// TTL is put's --ttl; 0 means the key does not expire.
	TTL time.Duration
	// Cond is put's or delete's condition (--if-absent, --if-version N,
	// --if-value OLD); the zero Cond is none.
	Cond Cond
	// Meta is get's --meta: print the key's version and TTL after its value.
	Meta bool
}

// Parse reads one command line. Blank lines and lines whose first word
// starts with # parse to the empty Command. Errors match ErrParse and are
// written to be shown as they are.
func Parse(line string) (Command, error) {
	toks, err := tokenize(line)
	if err != nil {
		return Command{}, err
	}
	if len(toks) == 0 || (!toks[0].quoted && strings.HasPrefix(toks[0].text, "#")) {
		return Command{}, nil
	}
	return build(toks[0].text, toks[1:])
}

// FromArgs builds the command name with already-split arguments (a shell's
// argv), checked as Parse checks them. Every argument is literal: none is
// read as a put option, so a one-shot put takes --ttl as a flag instead.
func FromArgs(name string, args []string) (Command, error) {
	toks := make([]token, len(args))
	for i, a := range args {
		toks[i] = token{text: a, quoted: true}
	}
	cmd, err := build(name, toks)
	if err == nil && name == "put" && cmd.Name == "delete" {
		// Only the REPL deletes with a valueless put: a script's
		// `kvclient put KEY` with its value missing is a mistake.
		return Command{}, lookup("put").usageError()
	}
	return cmd, err
}

func build(name string, args []token) (Command, error) {
	sp := lookup(name)
	if sp == nil {
		return Command{}, parseErrorf("unknown command %q; type help", name)
	}
	cmd := Command{Name: sp.name}
	if sp.build != nil {
		if err := sp.build(&cmd, args); err != nil {
			return Command{}, err
		}
		return cmd, nil
	}
	if len(args) < sp.min || (sp.max >= 0 && len(args) > sp.max) {
		return Command{}, sp.usageError()
	}
	for _, t := range args {
		cmd.Args = append(cmd.Args, t.text)
	}
	return cmd, nil
}

// String returns the canonical line for c: options first, each argument
// quoted only when it has to be.
func (c Command) String() string {
	if c.Name == "" {
		return ""
	}
	parts := []string{c.Name}
	if c.TTL != 0 {
		parts = append(parts, "--ttl="+c.TTL.String())
	}
	parts = append(parts, c.Cond.words()...)
	if c.Meta {
		parts = append(parts, "--meta")
	}
	for i, a := range c.Args {
		w := word(a)
		switch {
		case hasOptions(c.Name) && i == 0 && strings.HasPrefix(a, "--"):
			w = quote(a) // unquoted it would read as an option
		case c.Name == "put" && i == 1 && a == "null":
			w = quote(a) // unquoted it would delete
		}
		parts = append(parts, w)
	}
	return strings.Join(parts, " ")
}
