package repl

import (
	"fmt"
	"strings"
)

const helpFooter = `Quoting: "..." understands \" \\ \n \t \r; '...' is literal; a quote only
counts at the start of a word. Lines starting with # are comments.
Type help CMD for details.`

// Help returns the command list, or the usage and details of the command
// named cmd (any alias or case).
func Help(cmd string) string {
	if cmd == "" {
		return helpAll()
	}
	sp := lookup(cmd)
	if sp == nil {
		return fmt.Sprintf("unknown command %q; type help", cmd)
	}
	text := "usage: " + sp.usage() + "\n" + sp.summary
	if sp.details != "" {
		text += "\n" + sp.details
	}
	return text
}

// maxUsageWidth bounds the usage column of the command list; a longer
// usage (put's, with its options) gets a line of its own so that one
// command does not push every summary off the screen.
const maxUsageWidth = 56

func helpAll() string {
	width := 0
	for i := range specs {
		if n := len(specs[i].usage()); n <= maxUsageWidth {
			width = max(width, n)
		}
	}
	var b strings.Builder
	b.WriteString("Commands:\n")
	for i := range specs {
		if u := specs[i].usage(); len(u) > width {
			fmt.Fprintf(&b, "  %s\n  %-*s  %s\n", u, width, "", specs[i].summary)
			continue
		}
		fmt.Fprintf(&b, "  %-*s  %s\n", width, specs[i].usage(), specs[i].summary)
	}
	b.WriteString(helpFooter)
	return b.String()
}

// Names returns the canonical command names in help order (for completion).
func Names() []string {
	names := make([]string, len(specs))
	for i := range specs {
		names[i] = specs[i].name
	}
	return names
}
