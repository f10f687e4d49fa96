package repl

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
)

// Output modes of keyrange and keyrange_read.
const (
	rangesSummary = ""        // one line per server: its ranges and share of the ring
	rangesTable   = "--table" // one line per range
	rangesRaw     = "--raw"   // the ECE419 string: start,end,server; ...
)

func buildKeyRange(c *Command, args []token) error {
	switch {
	case len(args) == 0:
		return nil
	case len(args) == 1 && (args[0].text == rangesTable || args[0].text == rangesRaw):
		c.Args = []string{args[0].text}
		return nil
	}
	return lookup(c.Name).usageError()
}

// keyRange is one range of the ECE419 string, with the first 64 bits of
// its bounds for the share it covers.
type keyRange struct {
	start, end string
	server     string
	size       float64 // share of the hash space
}

// FormatRanges renders the ECE419 keyrange string raw as mode asks.
func FormatRanges(raw, mode string) (string, error) {
	if mode == rangesRaw {
		return raw, nil
	}
	var ranges []keyRange
	for _, part := range strings.Split(strings.TrimSuffix(raw, ";"), ";") {
		if part == "" {
			continue
		}
		f := strings.Split(part, ",")
		if len(f) != 3 {
			return "", fmt.Errorf("keyrange: malformed range %q", part)
		}
		s, err1 := hex.DecodeString(f[0])
		e, err2 := hex.DecodeString(f[1])
		if err1 != nil || err2 != nil || len(s) < 8 || len(e) < 8 {
			return "", fmt.Errorf("keyrange: malformed range %q", part)
		}
		// end is inclusive; a range may wrap past the top of the ring.
		n := binary.BigEndian.Uint64(e) - binary.BigEndian.Uint64(s) + 1
		ranges = append(ranges, keyRange{start: f[0], end: f[1], server: f[2], size: float64(n) / (1 << 64)})
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	if mode == rangesTable {
		fmt.Fprintln(tw, "START\tEND\tSERVER")
		for _, r := range ranges {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.start, r.end, r.server)
		}
		_ = tw.Flush()
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
	type total struct {
		n     int
		share float64
	}
	per := map[string]*total{}
	for _, r := range ranges {
		if per[r.server] == nil {
			per[r.server] = &total{}
		}
		per[r.server].n++
		per[r.server].share += r.size
	}
	servers := slices.Sorted(func(yield func(string) bool) {
		for s := range per {
			if !yield(s) {
				return
			}
		}
	})
	fmt.Fprintln(tw, "SERVER\tRANGES\tSHARE")
	for _, s := range servers {
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\n", s, per[s].n, 100*per[s].share)
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "%d ranges on %d servers (--table lists them, --raw prints the ECE419 string)", len(ranges), len(servers))
	return b.String(), nil
}
