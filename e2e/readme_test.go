//go:build e2e

package e2e

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/require"
)

// TestReadmeDefaults: every default README.md's flag tables give (ecs
// start's flags, the kvserver bounds) is the one the binary's --help
// prints.
func TestReadmeDefaults(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	help := map[string]string{}
	for _, cmd := range [][]string{{framework.ECSBin, "start", "--help"}, {framework.KVServerBin, "--help"}} {
		res := framework.Run(t, framework.RunOptions{}, binPath(t, cmd[0]), cmd[1:]...)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		help[cmd[0]] = res.Stdout
	}
	// | `--flag` | default | ... (ecs start) and | ... | `--flag` / `ECSKV_...` | default | ... (bounds)
	startRow := regexp.MustCompile("(?m)^\\| `(--[a-z-]+)` \\| ([^|]+) \\|")
	boundRow := regexp.MustCompile("(?m)^\\| [^|]+ \\| `(--[a-z-]+)` / `ECSKV_[A-Z_]+` \\| ([^|]+) \\|")
	checked := 0
	check := func(bin, flag, doc string) {
		want, ok := parseDefault(strings.Fields(doc)[0], strings.Fields(doc))
		if !ok {
			return // prose ("beside ecs", "(embedded)"): not a value to compare
		}
		line := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(flag) + `\b.*$`).FindString(help[bin])
		require.NotEmpty(t, line, "%s has no %s", bin, flag)
		got := "false"
		if m := regexp.MustCompile(`\(default "?([^")]*)"?\)$`).FindStringSubmatch(line); m != nil {
			got = m[1]
		}
		have, ok := parseDefault(got, []string{got})
		require.True(t, ok, "%s %s: default %q", bin, flag, got)
		require.Equal(t, want, have, "README says %s defaults to %q, %s --help says %q", flag, doc, bin, got)
		checked++
	}
	for _, m := range startRow.FindAllStringSubmatch(string(readme), -1) {
		check(framework.ECSBin, m[1], strings.TrimSpace(m[2]))
	}
	for _, m := range boundRow.FindAllStringSubmatch(string(readme), -1) {
		check(framework.KVServerBin, m[1], strings.TrimSpace(m[2]))
	}
	require.Greater(t, checked, 20, "README's flag tables were not found")
}

func binPath(t *testing.T, bin string) string { return framework.BinDir(t) + "/" + bin }

// parseDefault reads a documented or printed default into a comparable
// form: a duration, a size ("8 MiB"), a number, a boolean or an address.
func parseDefault(v string, words []string) (string, bool) {
	v = strings.Trim(v, "`")
	if d, err := time.ParseDuration(v); err == nil {
		return d.String(), true
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if len(words) > 1 && words[1] == "MiB" {
			n <<= 20
		}
		return strconv.FormatInt(n, 10), true
	}
	if len(words) == 1 && regexp.MustCompile(`^[a-z]+$|^[0-9.]+:[0-9]+$|^\./[a-z]+$`).MatchString(v) {
		return v, true
	}
	return "", false
}
