package repl

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ecskv/ecskv/kvclient"
)

// scanOpts are scan's options, kept in Command.Args in the canonical form
// --name=value so that String and FromArgs read them back.
type scanOpts struct {
	prefix   string
	limit    int // keys to print at most; 0: all
	keysOnly bool
	cursor   string // resume where an earlier scan stopped
}

func (o scanOpts) args() []string {
	var a []string
	if o.prefix != "" {
		a = append(a, "--prefix="+o.prefix)
	}
	if o.limit != 0 {
		a = append(a, "--limit="+strconv.Itoa(o.limit))
	}
	if o.keysOnly {
		a = append(a, "--keys-only")
	}
	if o.cursor != "" {
		a = append(a, "--cursor="+o.cursor)
	}
	return a
}

// buildScan reads --prefix P, --limit N, --keys-only and --cursor C, as
// separate words or --name=value.
func buildScan(c *Command, args []token) error {
	o, err := parseScanOpts(args)
	if err != nil {
		return err
	}
	c.Args = o.args()
	return nil
}

func parseScanOpts(args []token) (scanOpts, error) {
	var o scanOpts
	for len(args) > 0 {
		name, val, inline := strings.Cut(args[0].text, "=")
		args = args[1:]
		if name == "--keys-only" && !inline {
			o.keysOnly = true
			continue
		}
		if name != "--prefix" && name != "--limit" && name != "--cursor" {
			return o, parseErrorf("scan: unknown option %q; usage: %s", name, lookup("scan").usage())
		}
		if !inline {
			if len(args) == 0 {
				return o, parseErrorf("scan: %s needs a value", name)
			}
			val, args = args[0].text, args[1:]
		}
		switch name {
		case "--prefix":
			o.prefix = val
		case "--cursor":
			o.cursor = val
		default:
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return o, parseErrorf("scan: --limit wants a number of keys >= 0 (0: all), got %q", val)
			}
			o.limit = n
		}
	}
	return o, nil
}

// scanKeys prints the keys of the scan cmd asks for to out, one line each
// (KEY VALUE, or KEY alone with --keys-only; KEY quoted when it has to
// be), page by page, and returns a summary: how many, and the cursor to
// resume from when --limit stopped it.
func scanKeys(ctx context.Context, c Client, out io.Writer, cmd Command) (string, error) {
	toks := make([]token, len(cmd.Args))
	for i, a := range cmd.Args {
		toks[i] = token{text: a}
	}
	o, err := parseScanOpts(toks)
	if err != nil {
		return "", err
	}
	var opts []kvclient.OpOption
	if o.keysOnly {
		opts = append(opts, kvclient.WithKeysOnly())
	}
	n, cursor := 0, o.cursor
	for {
		page := kvclient.DefaultScanLimit
		if o.limit > 0 {
			page = min(page, o.limit-n)
		}
		var kvs []kvclient.KV
		kvs, cursor, err = c.Scan(ctx, o.prefix, cursor, page, opts...)
		if err != nil {
			return "", fmt.Errorf("%w (after %d keys; resume with --cursor=%s)", err, n, cursor)
		}
		for _, kv := range kvs {
			if o.keysOnly {
				fmt.Fprintln(out, word(kv.Key))
			} else {
				fmt.Fprintf(out, "%s %s\n", word(kv.Key), kv.Value)
			}
		}
		n += len(kvs)
		switch {
		case cursor == "":
			return fmt.Sprintf("(%s)", keysCount(n)), nil
		case o.limit > 0 && n >= o.limit:
			return fmt.Sprintf("(%s; more with --cursor=%s)", keysCount(n), cursor), nil
		}
	}
}

func keysCount(n int) string {
	if n == 1 {
		return "1 key"
	}
	return fmt.Sprintf("%d keys", n)
}
