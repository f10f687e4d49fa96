package repl

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// spec describes one command: its syntax, help and argument checks.
type spec struct {
	name    string
	aliases []string
	args    string // argument synopsis, as in "usage: get KEY"
	summary string // one line for the command list
	details string // extra help for "help CMD"
	// min and max bound the number of words after the name (max < 0: no
	// limit); they are used when build is nil.
	min, max int
	build    func(c *Command, args []token) error
}

// Levels are the logLevel arguments; off silences the client's logs.
var Levels = []string{"debug", "info", "warn", "error", "off"}

// specs is the command table, in help order. It is filled by init because
// help's checker looks commands up in it.
var specs []spec

func init() {
	specs = []spec{
		{name: "connect", args: "[HOST:PORT | HOST PORT]", build: buildConnect,
			summary: "use this kvserver to find the cluster (no address: the startup --server or --etcd-endpoints)",
			details: "The connection is made at once; key commands reconnect on their own after an error."},
		{name: "disconnect", summary: "close the connection; key commands fail until connect"},
		{name: "put", args: "[--ttl DURATION] [--if-absent | --if-version N | --if-value OLD] KEY VALUE...", build: buildPut,
			summary: "store VALUE under KEY; prints SUCCESS (new key) or UPDATE (overwrite), or CONDITION_FAILED",
			details: putDetails},
		{name: "get", args: "[--meta] KEY", build: buildGet, summary: "print KEY's value, or NOT_FOUND; --meta adds a line with its version and TTL",
			details: getDetails},
		{name: "delete", args: "[--if-version N | --if-value OLD] KEY", build: buildDelete,
			summary: "remove KEY; prints SUCCESS or NOT_FOUND, or CONDITION_FAILED", details: deleteDetails},
		{name: "cas", args: "KEY OLD NEW", min: 3, max: 3, summary: "compare-and-swap: store NEW under KEY if its value is OLD; prints UPDATE or CONDITION_FAILED",
			details: casDetails},
		{name: "incr", args: "KEY [DELTA]", build: buildIncr, summary: "add DELTA (default 1) to KEY's integer (absent: 0); prints the new value",
			details: incrDetails},
		{name: "decr", args: "KEY [DELTA]", build: buildIncr, summary: "subtract DELTA (default 1) from KEY's integer (absent: 0); prints the new value",
			details: "As incr KEY -DELTA."},
		{name: "expire", args: "KEY DURATION", build: buildExpire, summary: "make KEY expire DURATION from now, keeping its value; prints SUCCESS or NOT_FOUND",
			details: "DURATION as for put --ttl (at least 1ms). persist KEY removes the expiry; ttl KEY shows it."},
		{name: "persist", args: "KEY", min: 1, max: 1, summary: "remove KEY's expiry, keeping its value; prints SUCCESS or NOT_FOUND"},
		{name: "ttl", args: "KEY", min: 1, max: 1, summary: "print KEY's time left before it expires (e.g. 29.5s), \"no ttl\", or NOT_FOUND"},
		{name: "scan", args: "[--prefix P] [--limit N] [--keys-only] [--cursor C]", build: buildScan,
			summary: "list your keys (starting with P), KEY VALUE a line; at most N (0: all)",
			details: scanDetails},
		{name: "keyrange", args: "[--table | --raw]", build: buildKeyRange,
			summary: "show the write key ranges of the ring: per server, or every range (--table), or ECE419's string (--raw)"},
		{name: "keyrange_read", args: "[--table | --raw]", build: buildKeyRange,
			summary: "show the read key ranges of the ring, replicas included (as keyrange)"},
		{name: "login", args: "NAME", min: 1, max: 1, summary: "log in as NAME; asks for the password without echo"},
		{name: "logout", summary: "forget the login"},
		{name: "logLevel", args: "LEVEL", build: buildLogLevel,
			summary: "set the client's log level: " + strings.Join(Levels, "|")},
		{name: "help", args: "[CMD]", build: buildHelp, summary: "list the commands, or explain CMD"},
		{name: "quit", aliases: []string{"exit"}, summary: "leave the client (also: exit, Ctrl-D)"},
	}
}

const putDetails = `Options go right after put, before KEY: --ttl 30s or --ttl=30s (units
ns us ms s m h, must be positive); the key expires that long after the write.
Everything after KEY is the value: unquoted words are joined by single
spaces, so "put k a  b" stores "a b"; quote to keep spacing or to start the
value with a quote mark: put "my key" "a  value". Inside "..." the escapes
are \" \\ \n \t \r; '...' is literal. Quote a KEY that starts with --, or
end the options with --: put -- --key value.
With no value, or the unquoted word null, put deletes KEY and prints what
delete prints (SUCCESS or NOT_FOUND); put KEY "null" stores the word.
--if-absent stores only if KEY has no live value, --if-version N only if
its version is N, --if-value OLD only if its value is OLD (one at most;
--if-value takes the next word, quoted or not).
` + condDetails

const condDetails = `A condition is checked at the key's head in the order of the key's writes
(linearizable): the put or delete happens only if it holds, and otherwise
nothing is written and it prints CONDITION_FAILED with the key's current
version, "(current version 17)" or "(the key is absent: version 0)". A
key's version is that of the write that last wrote it; it grows with every
write while the key exists and is 0 while it is absent. get --meta shows it.`

const getDetails = `--meta prints a second line after the value: (version 17, ttl 29.5s) or
(version 17, no ttl). Options go before KEY; quote a KEY that starts with --.`

const deleteDetails = `--if-version N deletes only if KEY's version is N; --if-value OLD only if
its value is OLD. Options go before KEY; quote a KEY that starts with --.
` + condDetails

const casDetails = `OLD and NEW are one word each (quote them to hold spaces); cas k OLD NEW
is put --if-value OLD k NEW.
` + condDetails

const incrDetails = `The value must be a base-10 64-bit integer as incr writes it (no sign +,
no leading zeros); anything else is refused with "value is not an
integer", and a result past 64 bits with "increment would overflow",
writing nothing. DELTA may be negative. The key keeps its TTL. Exactly
once, like every write, even when the client retries after a failover.`

const scanDetails = `Walks every partition from its tail: keys are in order within a partition,
in no useful order across them. A key that exists for the whole scan is
listed exactly once; one written or deleted meanwhile may or may not be.
KEY is quoted when it has to be. The last line counts the keys; when
--limit stopped the scan it gives the --cursor that resumes it.`

// lookup finds a command by name or alias, ignoring case.
func lookup(name string) *spec {
	for i := range specs {
		sp := &specs[i]
		if strings.EqualFold(name, sp.name) {
			return sp
		}
		for _, a := range sp.aliases {
			if strings.EqualFold(name, a) {
				return sp
			}
		}
	}
	return nil
}

func (sp *spec) usage() string {
	return strings.TrimSpace(sp.name + " " + sp.args)
}

func (sp *spec) usageError() error {
	return parseErrorf("usage: %s", sp.usage())
}

// buildPut reads put's options, then KEY, then the value words.
func buildPut(c *Command, args []token) error {
	rest, err := putOptions(c, args)
	if err != nil {
		return err
	}
	// ECE419: put KEY with no value, or the unquoted word null, deletes.
	if len(rest) == 1 || (len(rest) == 2 && !rest[1].quoted && rest[1].text == "null") {
		if c.TTL != 0 {
			return parseErrorf("put: --ttl needs a value (put KEY with no value, or null, deletes KEY)")
		}
		if c.Cond.Kind != CondNone {
			return parseErrorf("put: a condition needs a value (for a conditional delete: delete --if-version N KEY)")
		}
		c.Name, c.Args = "delete", []string{rest[0].text}
		return nil
	}
	if len(rest) < 2 {
		return lookup("put").usageError()
	}
	vals := make([]string, len(rest)-1)
	for i, t := range rest[1:] {
		vals[i] = t.text
	}
	c.Args = []string{rest[0].text, strings.Join(vals, " ")}
	return nil
}

// putOptions consumes the unquoted --words before KEY and returns the rest.
func putOptions(c *Command, args []token) ([]token, error) {
	for len(args) > 0 && !args[0].quoted && strings.HasPrefix(args[0].text, "--") {
		opt, val := args[0].text, ""
		args = args[1:]
		switch {
		case opt == "--":
			return args, nil
		case opt == "--ttl" && len(args) > 0:
			val, args = args[0].text, args[1:]
		case strings.HasPrefix(opt, "--ttl="):
			val = strings.TrimPrefix(opt, "--ttl=")
		case opt == "--ttl":
			return nil, lookup("put").usageError()
		default:
			rest, ok, err := condOption(c, "put", opt, args)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, parseErrorf("put: unknown option %s; options go before KEY (quote a KEY that starts with --)", opt)
			}
			args = rest
			continue
		}
		ttl, err := parseTTL(val)
		if err != nil {
			return nil, err
		}
		c.TTL = ttl
	}
	return args, nil
}

func parseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, parseErrorf("put: bad --ttl %q: want a duration such as 30s, 5m or 2h", s)
	}
	if d <= 0 {
		return 0, parseErrorf("put: --ttl must be positive, got %s", s)
	}
	return d, nil
}

// buildConnect accepts HOST:PORT, or HOST PORT as the ECE419 clients did.
func buildConnect(c *Command, args []token) error {
	var addr string
	switch len(args) {
	case 0:
		return nil
	case 1:
		addr = args[0].text
	case 2:
		addr = net.JoinHostPort(args[0].text, args[1].text)
	default:
		return lookup("connect").usageError()
	}
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return parseErrorf("connect: want HOST:PORT or HOST PORT with a port 0-65535, got %q", addr)
	}
	c.Args = []string{addr}
	return nil
}

func buildLogLevel(c *Command, args []token) error {
	if len(args) != 1 {
		return lookup("logLevel").usageError()
	}
	lvl := strings.ToLower(args[0].text)
	for _, l := range Levels {
		if lvl == l {
			c.Args = []string{lvl}
			return nil
		}
	}
	return parseErrorf("logLevel: unknown level %q; want %s", args[0].text, strings.Join(Levels, "|"))
}

func buildHelp(c *Command, args []token) error {
	switch len(args) {
	case 0:
		return nil
	case 1:
		sp := lookup(args[0].text)
		if sp == nil {
			return parseErrorf("unknown command %q; type help", args[0].text)
		}
		c.Args = []string{sp.name}
		return nil
	}
	return lookup("help").usageError()
}
