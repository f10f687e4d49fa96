package repl

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse checks that Parse never panics, fails only with ErrParse, and
// that every command it returns prints as a line that parses back to it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"put k v", `put "my key" "a value"`, `put k 'x"y'`, "put --ttl=1h0m0.5s k a  b",
		`put -- --k "\n\t\\"`, "get k", "connect ::1 5001", "help exit", "logLevel INFO",
		"# comment", `put k "a"b`, "put k it's", "put \xff \x00",
		`put --if-value "a b" --ttl 1s k v`, "put --if-version=3 -- --k v", "get --meta k", "delete --if-version 0 k",
		"cas k a b", "incr n -3", "decr n", "expire k 1h", "persist k", "ttl k",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := Parse(line)
		if err != nil {
			require.ErrorIs(t, err, ErrParse)
			return
		}
		printed := cmd.String()
		again, err := Parse(printed)
		require.NoError(t, err, "printed %q", printed)
		require.Equal(t, cmd, again, "printed %q", printed)
	})
}
