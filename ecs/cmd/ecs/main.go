// Command ecs runs and administers an ecskv cluster (DESIGN §10).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit status.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	root := &cobra.Command{
		Use:           "ecs",
		Short:         "External Configuration Service of an ecskv cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newStartCommand(), newStatusCommand(), newStopCommand(),
		newAddCommand(), newRemoveCommand(), newCheckCommand(), newCertsCommand(), newUserCommand())
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		// Errors from the ecs package already carry the "ecs: " prefix.
		fmt.Fprintln(os.Stderr, "ecs: "+strings.TrimPrefix(err.Error(), "ecs: "))
		os.Exit(1)
	}
}
