// Package cliutil holds what every ecskv binary's command line shares:
// the version it reports and the exit status of a usage error.
package cliutil

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// ExitUsage is the exit status of every binary for a usage error: an
// unknown command or flag, a wrong argument count, a bad flag value.
const ExitUsage = 2

// version and commit are set by the Makefile's build (-ldflags -X); a
// plain `go build` or `go install` falls back to the build info.
var version, commit string

// Version is the module version and the commit the binary was built from.
func Version() string {
	v, rev, dirty := version, commit, ""
	if bi, ok := debug.ReadBuildInfo(); ok && rev == "" {
		v, rev, dirty = vcs(bi)
	}
	if v == "" {
		v = "(devel)"
	}
	if rev == "" {
		return fmt.Sprintf("%s (%s)", v, runtime.Version())
	}
	return fmt.Sprintf("%s (commit %s%s, %s)", v, rev, dirty, runtime.Version())
}

// vcs reads the version and commit go build stamped, if it did.
func vcs(bi *debug.BuildInfo) (v, rev, dirty string) {
	v = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return v, rev, dirty
}

// UsageError marks an error as the caller's misuse of the command line.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Setup gives root and its subcommands --version and marks their flag and
// argument errors as usage errors.
func Setup(root *cobra.Command) {
	root.Version = Version()
	root.SetVersionTemplate(root.Name() + " {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageError{err} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return UsageError{err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// IsUsage reports whether err is a usage error, including cobra's own
// for an unknown command.
func IsUsage(err error) bool {
	var u UsageError
	return errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command ")
}
