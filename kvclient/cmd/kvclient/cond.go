package main

import (
	"fmt"

	"github.com/ecskv/ecskv/kvclient/repl"
	"github.com/spf13/cobra"
)

// condFlags adds --if-version and --if-value to put or delete.
func (a *app) condFlags(cmd *cobra.Command) {
	cmd.Flags().Uint64Var(&a.ifVersion, "if-version", 0, "write only if KEY's version is N (0: KEY is absent; get --meta shows it)")
	cmd.Flags().StringVar(&a.ifValue, "if-value", "", "write only if KEY's value is OLD")
}

// cond is the condition the flags of cmd ask for; at most one.
func (a *app) cond(cmd *cobra.Command) (repl.Cond, error) {
	var conds []repl.Cond
	if a.ifAbsent {
		conds = append(conds, repl.Cond{Kind: repl.CondAbsent})
	}
	if f := cmd.Flags().Lookup("if-version"); f != nil && f.Changed {
		conds = append(conds, repl.Cond{Kind: repl.CondVersion, Version: a.ifVersion})
	}
	if f := cmd.Flags().Lookup("if-value"); f != nil && f.Changed {
		conds = append(conds, repl.Cond{Kind: repl.CondValue, Value: a.ifValue})
	}
	switch len(conds) {
	case 0:
		return repl.Cond{}, nil
	case 1:
		return conds[0], nil
	}
	return repl.Cond{}, fmt.Errorf("%s: only one of --if-absent, --if-version and --if-value", cmd.Name())
}

// condCommands are cas, incr, decr, expire, persist and ttl, with the
// REPL's arguments. Flags go before the arguments, so that a negative
// DELTA or a value starting with - is not read as one.
func (a *app) condCommands() []*cobra.Command {
	cmds := []*cobra.Command{
		a.oneShot("cas", "cas KEY OLD NEW", "store NEW under KEY if its value is OLD; prints UPDATE, or CONDITION_FAILED and exit 3"),
		a.oneShot("incr", "incr KEY [DELTA]", "add DELTA (default 1) to KEY's integer (absent: 0) and print the new value"),
		a.oneShot("decr", "decr KEY [DELTA]", "subtract DELTA (default 1) from KEY's integer (absent: 0) and print the new value"),
		a.oneShot("expire", "expire KEY DURATION", "make KEY expire DURATION from now, keeping its value; prints SUCCESS, or NOT_FOUND and exit 1"),
		a.oneShot("persist", "persist KEY", "remove KEY's expiry, keeping its value; prints SUCCESS, or NOT_FOUND and exit 1"),
		a.oneShot("ttl", "ttl KEY", `print KEY's time left before it expires, or "no ttl"; NOT_FOUND on stderr and exit 1 if missing`),
	}
	for _, c := range cmds {
		c.Flags().SetInterspersed(false)
	}
	return cmds
}
