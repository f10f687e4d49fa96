package repl

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ecskv/ecskv/kvclient"
)

// ConditionFailed is printed, with the key's current version, when a
// put, delete or cas finds its condition false and writes nothing.
const ConditionFailed = "CONDITION_FAILED"

// CondKind says which condition a put or delete carries.
type CondKind int

// The conditions of put and delete (kvclient.IfAbsent, IfVersion, IfValue).
const (
	CondNone    CondKind = iota
	CondAbsent           // --if-absent: the key has no live value
	CondVersion          // --if-version N: the key's version is N (0: absent)
	CondValue            // --if-value OLD: the key's live value is OLD
)

// Cond is the condition of a put or delete.
type Cond struct {
	Kind    CondKind
	Version uint64 // CondVersion
	Value   string // CondValue
}

// words prints c as the options that parse back to it.
func (c Cond) words() []string {
	switch c.Kind {
	case CondAbsent:
		return []string{"--if-absent"}
	case CondVersion:
		return []string{"--if-version=" + strconv.FormatUint(c.Version, 10)}
	case CondValue:
		return []string{"--if-value", word(c.Value)} // a quoted =word would not read as an option
	}
	return nil
}

// option is c as a kvclient option; nil for none.
func (c Cond) option() kvclient.OpOption {
	switch c.Kind {
	case CondAbsent:
		return kvclient.IfAbsent()
	case CondVersion:
		return kvclient.IfVersion(c.Version)
	case CondValue:
		return kvclient.IfValue([]byte(c.Value))
	}
	return nil
}

// parseVersion reads a version for --if-version.
func parseVersion(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, parseErrorf("--if-version wants a version >= 0 (0: the key is absent), got %q", s)
	}
	return v, nil
}

// condOption reads the condition option opt (with its value taken from
// args when not inline) into c, for the command name, and returns the
// remaining args. ok is false when opt is no condition option.
func condOption(c *Command, name, opt string, args []token) (rest []token, ok bool, err error) {
	flag, val, inline := strings.Cut(opt, "=")
	switch flag {
	case "--if-absent", "--if-version", "--if-value":
	default:
		return args, false, nil
	}
	if c.Cond.Kind != CondNone {
		return nil, true, parseErrorf("%s: only one of --if-absent, --if-version and --if-value", name)
	}
	if flag == "--if-absent" {
		if inline || name != "put" {
			return nil, true, parseErrorf("%s: unknown option %s", name, opt)
		}
		c.Cond = Cond{Kind: CondAbsent}
		return args, true, nil
	}
	if !inline {
		if len(args) == 0 {
			return nil, true, parseErrorf("%s: %s needs a value", name, flag)
		}
		val, args = args[0].text, args[1:]
	}
	if flag == "--if-value" {
		c.Cond = Cond{Kind: CondValue, Value: val}
		return args, true, nil
	}
	v, err := parseVersion(val)
	if err != nil {
		return nil, true, parseErrorf("%s: %s", name, err)
	}
	c.Cond = Cond{Kind: CondVersion, Version: v}
	return args, true, nil
}

// buildDelete reads delete's condition options, then KEY.
func buildDelete(c *Command, args []token) error {
	rest, err := keyOptions(c, args, func(opt string, args []token) ([]token, bool, error) {
		return condOption(c, "delete", opt, args)
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return lookup("delete").usageError()
	}
	c.Args = []string{rest[0].text}
	return nil
}

// buildGet reads get's --meta, then KEY.
func buildGet(c *Command, args []token) error {
	rest, err := keyOptions(c, args, func(opt string, args []token) ([]token, bool, error) {
		if opt != "--meta" {
			return args, false, nil
		}
		c.Meta = true
		return args, true, nil
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return lookup("get").usageError()
	}
	c.Args = []string{rest[0].text}
	return nil
}

// keyOptions consumes the unquoted --words before KEY with read, which
// reports whether it knew the option, and returns the rest.
func keyOptions(c *Command, args []token, read func(opt string, args []token) ([]token, bool, error)) ([]token, error) {
	for len(args) > 0 && !args[0].quoted && strings.HasPrefix(args[0].text, "--") {
		opt := args[0].text
		if opt == "--" {
			return args[1:], nil
		}
		rest, ok, err := read(opt, args[1:])
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, parseErrorf("%s: unknown option %s; options go before KEY (quote a KEY that starts with --)", c.Name, opt)
		}
		args = rest
	}
	return args, nil
}

// buildIncr checks incr's and decr's KEY [DELTA]; DELTA is kept in base 10.
func buildIncr(c *Command, args []token) error {
	if len(args) < 1 || len(args) > 2 {
		return lookup(c.Name).usageError()
	}
	c.Args = []string{args[0].text}
	if len(args) == 1 {
		return nil
	}
	lo := int64(math.MinInt64)
	if c.Name == "decr" {
		lo++ // decr negates DELTA
	}
	d, err := strconv.ParseInt(args[1].text, 10, 64)
	if err != nil || d < lo {
		return parseErrorf("%s: DELTA must be an integer from %d to %d, got %q", c.Name, lo, int64(math.MaxInt64), args[1].text)
	}
	c.Args = append(c.Args, strconv.FormatInt(d, 10))
	return nil
}

// buildExpire checks expire's KEY DURATION.
func buildExpire(c *Command, args []token) error {
	if len(args) != 2 {
		return lookup("expire").usageError()
	}
	d, err := time.ParseDuration(args[1].text)
	if err != nil {
		return parseErrorf("expire: bad DURATION %q: want a duration such as 30s, 5m or 2h", args[1].text)
	}
	if d < time.Millisecond {
		return parseErrorf("expire: DURATION must be at least 1ms, got %s", args[1].text)
	}
	c.Args = []string{args[0].text, d.String()}
	return nil
}

// hasOptions reports the commands whose options go before KEY.
func hasOptions(name string) bool { return name == "put" || name == "get" || name == "delete" }

// checkOptions refuses a Command built by hand with options its command
// does not take.
func checkOptions(c Command) error {
	switch {
	case c.TTL != 0 && c.Name != "put":
		return parseErrorf("%s: --ttl is put's option", c.Name)
	case c.Cond.Kind == CondAbsent && c.Name != "put":
		return parseErrorf("%s: --if-absent is put's option", c.Name)
	case c.Cond.Kind != CondNone && c.Name != "put" && c.Name != "delete":
		return parseErrorf("%s: conditions are put's and delete's options", c.Name)
	case c.Cond.Kind < CondNone || c.Cond.Kind > CondValue:
		return parseErrorf("%s: unknown condition", c.Name)
	case c.Meta && c.Name != "get":
		return parseErrorf("%s: --meta is get's option", c.Name)
	}
	return nil
}

// conditionFailed is the answer to a write whose condition did not hold;
// it matches kvclient.ErrConditionFailed.
type conditionFailed struct{ version uint64 }

func (e conditionFailed) Error() string {
	if e.version == 0 {
		return ConditionFailed + " (the key is absent: version 0)"
	}
	return fmt.Sprintf("%s (current version %d)", ConditionFailed, e.version)
}

func (e conditionFailed) Is(target error) bool { return target == kvclient.ErrConditionFailed }

// outcome turns a condition's failure into conditionFailed with the
// version m holds; other errors pass.
func outcome(err error, m *kvclient.Meta) error {
	if errors.Is(err, kvclient.ErrConditionFailed) {
		return conditionFailed{version: m.Version}
	}
	return err
}

// ConditionLine is what Run prints for err, a failed condition.
func ConditionLine(err error) string {
	var cf conditionFailed
	if errors.As(err, &cf) {
		return cf.Error()
	}
	return ConditionFailed
}

// condCommand runs the commands of counters, expiry and compare-and-swap;
// ok is false for any other command.
func condCommand(ctx context.Context, c Client, cmd Command) (out string, ok bool, err error) {
	key := cmd.Args[0]
	var m kvclient.Meta
	switch cmd.Name {
	case "cas":
		_, err = c.Put(ctx, key, []byte(cmd.Args[2]), kvclient.IfValue([]byte(cmd.Args[1])), kvclient.WithMeta(&m))
		if err != nil {
			return "", true, outcome(err, &m)
		}
		return kvclient.Updated.String(), true, nil
	case "incr", "decr":
		delta := int64(1)
		if len(cmd.Args) == 2 {
			delta, _ = strconv.ParseInt(cmd.Args[1], 10, 64) // checked by buildIncr
		}
		if cmd.Name == "decr" {
			delta = -delta
		}
		n, err := c.Incr(ctx, key, delta)
		return strconv.FormatInt(n, 10), true, err
	case "expire":
		d, _ := time.ParseDuration(cmd.Args[1]) // checked by buildExpire
		return "SUCCESS", true, c.Expire(ctx, key, d)
	case "persist":
		return "SUCCESS", true, c.Persist(ctx, key)
	case "ttl":
		if _, err := c.Get(ctx, key, kvclient.WithMeta(&m)); err != nil {
			return "", true, err
		}
		return ttlText(m.TTL), true, nil
	}
	return "", false, nil
}

// ttlText is a key's time left as ttl and get --meta print it.
func ttlText(ttl time.Duration) string {
	if ttl == 0 {
		return "no ttl"
	}
	return ttl.String()
}

// metaLine is the line get --meta prints after the value.
func metaLine(m kvclient.Meta) string {
	if m.TTL == 0 {
		return fmt.Sprintf("(version %d, no ttl)", m.Version)
	}
	return fmt.Sprintf("(version %d, ttl %s)", m.Version, m.TTL)
}
