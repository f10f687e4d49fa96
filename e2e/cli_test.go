//go:build e2e

package e2e

import (
	"regexp"
	"testing"

	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/require"
)

// TestCommandLine: every binary reports its version, and a usage error
// exits 2 from every binary with one line naming the mistake.
func TestCommandLine(t *testing.T) {
	dir := framework.BinDir(t)
	bins := []string{framework.ECSBin, framework.KVServerBin, framework.KVClientBin, "kvbench"}
	for _, b := range bins {
		res := framework.Run(t, framework.RunOptions{}, dir+"/"+b, "--version")
		require.Equal(t, 0, res.ExitCode, "%s --version: %s", b, res.Stderr)
		require.Regexp(t, regexp.MustCompile(`^`+b+` \S+ \((commit [0-9a-f]+, )?go[0-9.]+\)\n$`), res.Stdout)

		res = framework.Run(t, framework.RunOptions{}, dir+"/"+b, "--no-such-flag")
		require.Equal(t, 2, res.ExitCode, "%s with an unknown flag", b)
		require.Contains(t, res.Stderr, "unknown flag: --no-such-flag")
	}
	for _, args := range [][]string{{"bogus"}, {"remove"}, {"status", "extra"}, {"add", "-n", "x"}, {"user", "add"}} {
		res := framework.Run(t, framework.RunOptions{}, dir+"/"+framework.ECSBin, args...)
		require.Equal(t, 2, res.ExitCode, "ecs %v: %s", args, res.Stderr)
		require.Regexp(t, `^ecs: [^\n]+\n`, res.Stderr)
	}
	res := framework.Run(t, framework.RunOptions{}, dir+"/"+framework.ECSBin, "start", "--help")
	require.Contains(t, res.Stdout, "--certs-dir DIR ")
	require.NotContains(t, res.Stdout, "`")
}
