// Command kvclient is the ecskv command-line client (DESIGN §10).
//
//	kvclient [flags]                               REPL (see "help" inside it)
//	kvclient [flags] put [--ttl DURATION] [--if-absent | --if-version N | --if-value OLD] [--value-file FILE] KEY [VALUE... | -]
//	kvclient [flags] get [--hex] [--meta] KEY | delete [--if-version N | --if-value OLD] KEY
//	kvclient [flags] cas KEY OLD NEW | incr KEY [DELTA] | decr KEY [DELTA]
//	kvclient [flags] expire KEY DURATION | persist KEY | ttl KEY
//	kvclient [flags] keyrange | keyrange_read
//	kvclient [flags] scan [--prefix P] [--limit N] [--keys-only] [--cursor C]
//	kvclient [flags] watch [--prefix] [--from-version N] KEY
//
// Exit status: 0 on success; 1 when a command finds no key (get and ttl
// print NOT_FOUND on stderr so stdout holds only answers, the others print
// it on stdout like their SUCCESS); 2 on any error, with one line
// "kvclient: ..." on stderr; 3 when a condition (put --if-..., delete
// --if-..., cas) did not hold and nothing was written, with
// CONDITION_FAILED and the key's current version on stdout. The REPL
// reading a pipe or file exits 2 when any line failed to parse or printed
// ERROR, 0 otherwise; at a terminal it exits 0.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chzyer/readline"
	"github.com/ecskv/ecskv/common/cliutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/config/load"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/ecskv/ecskv/kvclient/repl"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, isTerminal: readline.DefaultIsTerminal, askPassword: termPassword}
	os.Exit(a.run(os.Args[1:]))
}

// app is one run of the binary; tests build it with pipes and a fake dialer.
type app struct {
	valueFile string // put --value-file
	hex       bool   // get --hex
	meta      bool   // get --meta
	ifAbsent  bool   // put --if-absent
	ifVersion uint64 // put and delete --if-version, when set
	ifValue   string // put and delete --if-value, when set

	stdin          io.Reader
	stdout, stderr io.Writer
	isTerminal     func() bool
	dial           repl.Dialer // nil: kvclient.New
	ttl            time.Duration
	// askPassword reads a password without echo from the terminal; nil
	// when there is none to ask at.
	askPassword repl.PasswordFunc
}

// termPassword asks for user's password on the terminal without echo.
func termPassword(user string) (string, error) {
	fmt.Fprintf(os.Stderr, "Password for %s: ", user)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// exitCode is returned once the command has printed everything it had to
// say; it only sets the exit status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func (a *app) run(args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(context.Background())
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	}
	fmt.Fprintf(a.stderr, "kvclient: %s\n", repl.Message(err))
	return 2
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "kvclient [flags] [command]",
		Short: "ecskv client: a REPL, or one command",
		Long: `kvclient talks to an ecskv cluster. Without a command it starts a REPL
(type help there); with one it runs it and exits.

Exit status: 0 success; 1 no such key (get and ttl print NOT_FOUND on
stderr, the others on stdout); 2 any error (one line "kvclient: ..." on
stderr); 3 a condition did not hold (put --if-..., delete --if-..., cas):
nothing was written, and CONDITION_FAILED with the key's current version
is on stdout. A REPL reading a pipe exits 2 if any line failed to parse or
printed ERROR.`,
		Args:          a.noCommand,
		RunE:          a.runREPL,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	defer cliutil.Setup(root) // once every command is added
	addConfigFlags(root)
	put := a.oneShot("put", "put [--ttl DURATION] [--if-absent | --if-version N | --if-value OLD] [--value-file FILE] KEY [VALUE... | -]",
		"store VALUE (the remaining words, joined by spaces; - reads standard input; --value-file a file, byte for byte) under KEY; prints SUCCESS or UPDATE, or CONDITION_FAILED and exit 3")
	put.Flags().DurationVar(&a.ttl, "ttl", 0, "expire the key DURATION after the write (e.g. 30s, 5m)")
	put.Flags().StringVar(&a.valueFile, "value-file", "", "store FILE's bytes as the value")
	put.Flags().BoolVar(&a.ifAbsent, "if-absent", false, "store only if KEY has no live value")
	a.condFlags(put)
	// Flags must come before KEY: everything after it is the value, as in the REPL.
	put.Flags().SetInterspersed(false)
	put.RunE = a.runPut
	get := a.oneShot("get", "get [--hex] [--meta] KEY", "print KEY's value (--hex: hex-encoded); NOT_FOUND on stderr and exit 1 if missing")
	get.Flags().BoolVar(&a.hex, "hex", false, "print the value hex-encoded")
	get.Flags().BoolVar(&a.meta, "meta", false, "print a line with KEY's version and TTL after the value")
	del := a.oneShot("delete", "delete [--if-version N | --if-value OLD] KEY",
		"remove KEY; prints SUCCESS, or NOT_FOUND and exit 1, or CONDITION_FAILED and exit 3")
	a.condFlags(del)
	root.AddCommand(put, get, del)
	root.AddCommand(a.condCommands()...)
	root.AddCommand(
		a.scanCommand(),
		a.watchCommand(),
		a.rangesCommand("keyrange", "show the write key ranges of the ring: per server, every range (--table), or ECE419's string (--raw)"),
		a.rangesCommand("keyrange_read", "show the read key ranges of the ring, replicas included (as keyrange)"),
	)
	return root
}

// noCommand rejects arguments that name no command; cobra's own message
// would list suggestions over several lines.
func (a *app) noCommand(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q; want put, get, delete, cas, incr, decr, expire, persist, ttl, scan, watch, keyrange or keyrange_read (none starts the REPL)", args[0])
	}
	return nil
}

func addConfigFlags(root *cobra.Command) {
	d := config.DefaultClient()
	f := root.PersistentFlags()
	f.StringSlice("server", nil, "kvserver HOST:PORT to read the ring from (repeatable or comma-separated); overrides --etcd-endpoints")
	f.StringSlice("etcd-endpoints", d.EtcdEndpoints, "etcd endpoints holding the ring")
	f.String("cluster", d.Cluster, "cluster name (etcd key prefix)")
	f.Duration("dial-timeout", d.DialTimeout, "how long connecting may take")
	f.Duration("request-timeout", d.RequestTimeout, "how long one command may take, retries included")
	f.String("log-level", d.LogLevel, "client log level: debug|info|warn|error")
	f.String(load.ConfigFlag, "", "config file (YAML, TOML or JSON); flags override it")
	load.AddTLSFlags(f, "client.crt and client.key", false)
	f.String("user", "", "log in as this user (clusters with authentication)")
	f.String("password-file", "", "file holding the password of --user (else $ECSKV_PASSWORD, else a prompt)")
	addPlaceFlags(f, d)
}

// addPlaceFlags adds the flags of nearest reads.
func addPlaceFlags(f *pflag.FlagSet, d config.Client) {
	f.String("read-mode", d.ReadMode, "get reads from the chain's tail, or from the nearest member where the key is clean: tail|nearest")
	f.String("zone", d.Zone, "this client's zone: nearest reads go to a chain member in it")
	f.String("coords", "", "`X,Y` (as the servers' --coords): with no member in --zone, nearest reads go to the closest")
}

func (a *app) oneShot(name, use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs, // repl.FromArgs checks them with the REPL's usage lines
		// Flags go before the arguments; cobra's "[flags]" suffix would say otherwise.
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runOne(cmd, name, args)
		},
	}
}

// rangesCommand is keyrange or keyrange_read with their output flags,
// passed on as the REPL's arguments.
func (a *app) rangesCommand(name, short string) *cobra.Command {
	cmd := a.oneShot(name, name+" [--table | --raw]", short)
	table := cmd.Flags().Bool("table", false, "one line per range")
	raw := cmd.Flags().Bool("raw", false, "the ECE419 string: start,end,server;...")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *table {
			args = append(args, "--table")
		}
		if *raw {
			args = append(args, "--raw")
		}
		return a.runOne(cmd, name, args)
	}
	return cmd
}

// scanCommand is scan with its flags, passed on as the REPL's options.
func (a *app) scanCommand() *cobra.Command {
	cmd := a.oneShot("scan", "scan [--prefix P] [--limit N] [--keys-only] [--cursor C]",
		"print your keys (starting with P), KEY VALUE a line, and their count on stderr; at most N (0: all)")
	f := cmd.Flags()
	prefix := f.String("prefix", "", "only keys that start with P")
	limit := f.Int("limit", 0, "print at most N keys, then the --cursor that resumes (on stderr); 0: all")
	keysOnly := f.Bool("keys-only", false, "print keys without their values")
	cursor := f.String("cursor", "", "resume where an earlier scan stopped")
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		args := []string{"--prefix=" + *prefix, "--limit=" + strconv.Itoa(*limit), "--cursor=" + *cursor}
		if *keysOnly {
			args = append(args, "--keys-only")
		}
		return a.runOne(cmd, "scan", args)
	}
	return cmd
}

// runOne connects at once and runs a single command.
func (a *app) runOne(cmd *cobra.Command, name string, args []string) error {
	c, err := repl.FromArgs(name, args)
	if err != nil {
		return err
	}
	if c.Cond, err = a.cond(cmd); err != nil {
		return err
	}
	c.TTL, c.Meta = a.ttl, a.meta
	return a.runCommand(cmd, name, c)
}

// runPut is put, its value from the words, standard input (-) or a file.
func (a *app) runPut(cmd *cobra.Command, args []string) error {
	var (
		val  []byte
		read bool
		err  error
	)
	switch {
	case a.valueFile != "":
		if len(args) != 1 {
			return fmt.Errorf("usage: put --value-file FILE KEY (no VALUE words)")
		}
		val, err = os.ReadFile(a.valueFile)
		read = true
	case len(args) == 2 && args[1] == "-":
		val, err = io.ReadAll(a.stdin)
		read = true
	}
	if err != nil {
		return fmt.Errorf("read the value: %w", err)
	}
	if !read {
		return a.runOne(cmd, "put", args)
	}
	if len(val) == 0 {
		return fmt.Errorf("the value is empty (delete KEY removes a key)")
	}
	c := repl.Command{Name: "put", Args: []string{args[0], string(val)}, TTL: a.ttl}
	if c.Cond, err = a.cond(cmd); err != nil {
		return err
	}
	return a.runCommand(cmd, "put", c)
}

// runCommand connects and runs the command c, printing what it answers.
func (a *app) runCommand(cmd *cobra.Command, name string, c repl.Command) error {
	s, err := a.session(cmd, a.stdout, a.terminalPassword())
	if err != nil {
		return err
	}
	defer s.Close()
	out, err := s.Do(cmd.Context(), c)
	switch {
	case errors.Is(err, kvclient.ErrNotFound):
		w := a.stdout
		if name == "get" || name == "ttl" {
			w = a.stderr // stdout carries only answers
		}
		fmt.Fprintln(w, repl.NotFound)
		return exitCode(1)
	case errors.Is(err, kvclient.ErrConditionFailed):
		fmt.Fprintln(a.stdout, repl.ConditionLine(err))
		return exitCode(3)
	case err != nil:
		return err
	}
	w := a.stdout
	if name == "scan" {
		w = a.stderr // stdout carries only keys
	}
	if name == "get" && a.hex {
		out = hexValue(out, c.Meta)
	}
	fmt.Fprintln(w, out)
	return nil
}

// terminalPassword is the password prompt when standard input is a terminal.
func (a *app) terminalPassword() repl.PasswordFunc {
	if a.isTerminal() {
		return a.askPassword
	}
	return nil
}

// session loads the configuration and returns a Session that dials lazily;
// ask (nil: none) asks for passwords, for --user and for login.
func (a *app) session(cmd *cobra.Command, out io.Writer, ask repl.PasswordFunc) (*repl.Session, error) {
	cfg, err := load.Client(cmd.Flags())
	if err != nil {
		return nil, err
	}
	if cfg.User != "" && cfg.Password == "" && cfg.PasswordFile == "" {
		if ask == nil {
			return nil, fmt.Errorf("--user %s needs --password-file, ECSKV_PASSWORD, or a terminal to ask at", cfg.User)
		}
		if cfg.Password, err = ask(cfg.User); err != nil {
			return nil, err
		}
	}
	lg, setLevel, err := newLogger(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	dial := a.dial
	if dial == nil {
		dial = func(ctx context.Context, cfg config.Client) (repl.Client, error) {
			c, err := kvclient.New(ctx, cfg, kvclient.WithLogger(lg))
			if err != nil {
				return nil, err // not c: a nil *Client in an interface is not nil
			}
			return c, nil
		}
	}
	return repl.NewSession(cfg, dial, out, repl.WithLogLevel(setLevel), repl.WithPassword(ask)), nil
}

// hexValue hex-encodes get's value in out, leaving --meta's line (the
// last, after the value) as it is.
func hexValue(out string, meta bool) string {
	if !meta {
		return hex.EncodeToString([]byte(out))
	}
	i := strings.LastIndexByte(out, '\n')
	return hex.EncodeToString([]byte(out[:i])) + out[i:]
}
