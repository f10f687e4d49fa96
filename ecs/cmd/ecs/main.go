// Command ecs runs and administers an ecskv cluster (DESIGN §10).
package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"

	"github.com/ecskv/ecskv/common/cliutil"
	"github.com/spf13/cobra"
)

// exitError carries a specific exit status.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// innerPrefix matches the "ecs: " prefixes inside a message.
var innerPrefix = regexp.MustCompile(`(^|: )ecs: `)

func main() {
	root := &cobra.Command{
		Use:           "ecs",
		Short:         "External Configuration Service of an ecskv cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newStartCommand(), newStatusCommand(), newStopCommand(),
		newAddCommand(), newRemoveCommand(), newRestartCommand(), newReplaceCommand(), newCheckCommand(), newBackupCommand(), newRestoreCommand(), newCertsCommand(), newUserCommand())
	cliutil.Setup(root)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		// Errors from the ecs package carry an "ecs: " prefix of their own,
		// also after a command's ("remove s9: ecs: unknown server").
		fmt.Fprintln(os.Stderr, "ecs: "+innerPrefix.ReplaceAllString(err.Error(), "${1}"))
		if cliutil.IsUsage(err) {
			os.Exit(cliutil.ExitUsage)
		}
		os.Exit(1)
	}
}
