package kvclient

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNoConfigLibraries keeps the library light for the programs that
// import it: the configuration libraries of the binaries (viper, cobra,
// pflag) must not be among its dependencies.
func TestNoConfigLibraries(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/spf13/viper", "github.com/spf13/cobra", "github.com/spf13/pflag"} {
			require.False(t, strings.HasPrefix(dep, banned), "kvclient depends on %s", dep)
		}
	}
}
