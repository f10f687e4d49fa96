package repl

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrParse matches (errors.Is) every error Parse and FromArgs return.
	ErrParse = errors.New("repl: cannot parse command")
	// ErrQuit is returned by Session.Do and Session.Run for quit and exit.
	ErrQuit = errors.New("repl: quit")
	// ErrNotConnected is returned by key commands after disconnect.
	ErrNotConnected = errors.New("repl: not connected; type connect [HOST:PORT]")
	// ErrNoPassword is returned by login when nothing can ask for a password.
	ErrNoPassword = errors.New("repl: login needs a terminal to ask for the password, or --password-file or ECSKV_PASSWORD")
	// ErrNoLogLevel is returned by logLevel when the session has no logger hook.
	ErrNoLogLevel = errors.New("repl: this session cannot change its log level")
)

// parseError carries a message written for the person at the prompt (it is
// printed as is, so it has no package prefix) and still matches ErrParse.
type parseError string

func (e parseError) Error() string        { return string(e) }
func (e parseError) Is(target error) bool { return target == ErrParse }

func parseErrorf(format string, args ...any) error {
	return parseError(fmt.Sprintf(format, args...))
}

// Message renders err for a person on one line: the package prefix of
// client and repl errors is dropped (the prompt already says where it came
// from) and joined errors are separated by "; " instead of newlines.
func Message(err error) string {
	msg := err.Error()
	for _, p := range []string{"kvclient: ", "repl: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return strings.ReplaceAll(msg, "\n", "; ")
}
