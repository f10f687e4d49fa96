package resp

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Results of a command: labels of ecskv_resp_requests_total.
const (
	resultOK      = "ok"      // answered (a missing key included)
	resultRefused = "refused" // a bad request: arity, syntax, NOAUTH, unknown command
	resultError   = "error"   // the cluster failed or timed out
)

// handler runs one command and writes its answer to s.out.
type handler func(ctx context.Context, s *session, args [][]byte) string

// command is one command, as COMMAND describes it to clients.
type command struct {
	name  string // lower case; "client|setname" for a subcommand
	arity int    // Redis's: n exactly, -n at least n (the name counted)
	flags []string
	// first, last, step: where the keys are (go-redis's cluster client
	// routes by first).
	first, last, step int
	noAuth            bool // runs before AUTH on a cluster with users
	run               handler
	subs              map[string]*command // a container (CLIENT, CLUSTER, ...)
}

var (
	flagsRead  = []string{"readonly", "fast"}
	flagsWrite = []string{"write", "denyoom"}
	flagsConn  = []string{"fast", "loading", "stale"}
	flagsAdmin = []string{"loading", "stale"}
)

// commands are the commands by name. init fills it, since COMMAND's
// handler reads it.
var commands map[string]*command

func init() { commands = buildTable() }

func buildTable() map[string]*command {
	t := map[string]*command{}
	add := func(c *command) { t[c.name] = c }
	for _, c := range stringCommands() {
		add(c)
	}
	for _, c := range connCommands() {
		add(c)
	}
	add(clusterCommand())
	return t
}

func keyCmd(name string, arity int, flags []string, run handler) *command {
	return &command{name: name, arity: arity, flags: flags, first: 1, last: 1, step: 1, run: run}
}

func plainCmd(name string, arity int, flags []string, run handler) *command {
	return &command{name: name, arity: arity, flags: flags, run: run}
}

// container makes a command of subcommands, HELP included; each sub's
// name is "name|sub".
func container(name string, flags []string, subs ...*command) *command {
	c := &command{name: name, arity: -2, flags: flags, subs: map[string]*command{}}
	help := plainCmd("help", 2, flagsConn, func(_ context.Context, s *session, _ [][]byte) string {
		lines := []string{strings.ToUpper(name) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"}
		for _, sub := range sortedSubs(c) {
			lines = append(lines, strings.ToUpper(strings.TrimPrefix(sub.name, name+"|")))
		}
		s.out.array(len(lines))
		for _, l := range lines {
			s.out.simple(l)
		}
		return resultOK
	})
	for _, s := range append(subs, help) {
		s.name = name + "|" + s.name
		c.subs[strings.TrimPrefix(s.name, name+"|")] = s
	}
	return c
}

// lookup finds args' command (or subcommand), or writes Redis's refusal.
func lookup(w *replies, args [][]byte) (*command, bool) {
	name := strings.ToLower(string(args[0]))
	c, ok := commands[name]
	if !ok {
		w.err(unknownCommand(args))
		return nil, false
	}
	if c.subs != nil && len(args) >= 2 {
		sub, ok := c.subs[strings.ToLower(string(args[1]))]
		if !ok {
			w.err(fmt.Sprintf("ERR unknown subcommand '%.128s'. Try %s HELP.", args[1], strings.ToUpper(name)))
			return nil, false
		}
		c = sub
	}
	if !arityOK(c.arity, len(args)) {
		w.err("ERR wrong number of arguments for '" + c.name + "' command")
		return nil, false
	}
	return c, true
}

func arityOK(arity, n int) bool {
	if arity < 0 {
		return n >= -arity
	}
	return n == arity
}

// unknownCommand is Redis's text, its arguments quoted and cut at about
// 128 bytes.
func unknownCommand(args [][]byte) string {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		fmt.Fprintf(&b, "'%.*s' ", 128-b.Len(), a)
	}
	return fmt.Sprintf("ERR unknown command '%.128s', with args beginning with: %s", args[0], b.String())
}

// describe writes c as one entry of COMMAND's answer (Redis 7's ten
// fields).
func describe(w *replies, c *command) {
	w.array(10)
	w.bulkString(c.name)
	w.int(int64(c.arity))
	w.set(len(c.flags))
	for _, f := range c.flags {
		w.simple(f)
	}
	w.int(int64(c.first))
	w.int(int64(c.last))
	w.int(int64(c.step))
	w.set(0)   // ACL categories
	w.array(0) // tips
	w.array(0) // key specs
	subs := sortedSubs(c)
	w.array(len(subs))
	for _, s := range subs {
		describe(w, s)
	}
}

func sortedSubs(c *command) []*command {
	var out []*command
	for _, s := range c.subs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *command) int { return strings.Compare(a.name, b.name) })
	return out
}

func sortedCommands() []*command {
	var out []*command
	for _, c := range commands {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *command) int { return strings.Compare(a.name, b.name) })
	return out
}
