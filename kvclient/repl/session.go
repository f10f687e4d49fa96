package repl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
)

// NotFound is printed for a missing key.
const NotFound = "NOT_FOUND"

// Client is the part of *kvclient.Client a Session uses; tests pass a fake.
type Client interface {
	Put(ctx context.Context, key string, value []byte, opts ...kvclient.OpOption) (kvclient.PutResult, error)
	Get(ctx context.Context, key string, opts ...kvclient.OpOption) ([]byte, error)
	Delete(ctx context.Context, key string, opts ...kvclient.OpOption) error
	KeyRange(ctx context.Context) (string, error)
	KeyRangeRead(ctx context.Context) (string, error)
	Scan(ctx context.Context, prefix, cursor string, limit int, opts ...kvclient.OpOption) ([]kvclient.KV, string, error)
	Login(ctx context.Context, user, password string) error
	Logout()
	Close() error
}

// PasswordFunc asks for user's password (without echo at a terminal).
type PasswordFunc func(user string) (string, error)

// Dialer connects a Client; the binary wraps kvclient.New.
type Dialer func(ctx context.Context, cfg config.Client) (Client, error)

// Session runs commands against one cluster connection, which it opens
// lazily so the REPL starts while the cluster is down. Not safe for
// concurrent use.
type Session struct {
	out      io.Writer
	dial     Dialer
	start    config.Client // startup configuration; connect without an address returns to it
	cfg      config.Client // configuration of the next dial
	client   Client        // nil until a key command or connect needs it
	offline  bool          // after disconnect: do not dial until connect
	setLevel func(level string) error
	password PasswordFunc // nil: login uses the configured password only
}

// SessionOption configures a Session.
type SessionOption func(*Session)

// WithLogLevel lets logLevel change the client's log level; set receives
// one of Levels.
func WithLogLevel(set func(level string) error) SessionOption {
	return func(s *Session) { s.setLevel = set }
}

// WithPassword makes login ask for the password with ask.
func WithPassword(ask PasswordFunc) SessionOption {
	return func(s *Session) { s.password = ask }
}

// NewSession returns a Session that dials cfg on first use and prints to out.
func NewSession(cfg config.Client, dial Dialer, out io.Writer, opts ...SessionOption) *Session {
	s := &Session{out: out, dial: dial, start: cfg, cfg: cfg}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Target describes where the next connection goes, for banners and messages.
func (s *Session) Target() string {
	if len(s.cfg.Servers) > 0 {
		return strings.Join(s.cfg.Servers, ",")
	}
	return "etcd " + strings.Join(s.cfg.EtcdEndpoints, ",")
}

// Close closes the connection, if any.
func (s *Session) Close() error {
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}

// Run executes cmd and prints its result on one line (help prints several):
// the output, NOT_FOUND, the parse error, or "ERROR: <message>". It returns
// nil for results including NOT_FOUND, ErrQuit for quit, and the error it
// printed otherwise.
func (s *Session) Run(ctx context.Context, cmd Command) error {
	if cmd.Name == "" {
		return nil
	}
	out, err := s.Do(ctx, cmd)
	switch {
	case errors.Is(err, ErrQuit):
		return err
	case errors.Is(err, kvclient.ErrNotFound):
		out, err = NotFound, nil
	case errors.Is(err, ErrParse):
		out = err.Error()
	case err != nil:
		out = "ERROR: " + Message(err)
	}
	fmt.Fprintln(s.out, out)
	return err
}

// Do executes cmd and returns what Run would print, without printing it.
// A missing key is kvclient.ErrNotFound; quit is ErrQuit.
func (s *Session) Do(ctx context.Context, cmd Command) (string, error) {
	if cmd.Name == "" {
		return "", nil
	}
	// Re-check so a Command built by hand cannot index past its Args.
	checked, err := FromArgs(cmd.Name, cmd.Args)
	if err != nil {
		return "", err
	}
	checked.TTL = cmd.TTL
	return s.do(ctx, checked)
}

func (s *Session) do(ctx context.Context, cmd Command) (string, error) {
	switch cmd.Name {
	case "connect":
		return s.connect(ctx, cmd.Args)
	case "disconnect":
		// The connection is gone either way; a close error changes nothing.
		_ = s.Close()
		s.offline = true
		return "disconnected", nil
	case "login":
		return s.login(ctx, cmd.Args[0])
	case "logout":
		return s.logout(), nil
	case "logLevel":
		return s.logLevel(cmd.Args[0])
	case "help":
		return Help(strings.Join(cmd.Args, "")), nil
	case "quit":
		return "", ErrQuit
	}
	c, err := s.conn(ctx)
	if err != nil {
		return "", err
	}
	if cmd.Name == "scan" {
		return scanKeys(ctx, c, s.out, cmd) // keys are printed as they come
	}
	return keyCommand(ctx, c, cmd)
}

// keyCommand runs the commands that talk to the cluster.
func keyCommand(ctx context.Context, c Client, cmd Command) (string, error) {
	switch cmd.Name {
	case "put":
		var opts []kvclient.OpOption
		if cmd.TTL != 0 {
			opts = append(opts, kvclient.WithTTL(cmd.TTL))
		}
		res, err := c.Put(ctx, cmd.Args[0], []byte(cmd.Args[1]), opts...)
		if err != nil {
			return "", err
		}
		return res.String(), nil
	case "get":
		v, err := c.Get(ctx, cmd.Args[0])
		return string(v), err
	case "delete":
		if err := c.Delete(ctx, cmd.Args[0]); err != nil {
			return "", err
		}
		return "SUCCESS", nil
	case "keyrange", "keyrange_read":
		get := c.KeyRange
		if cmd.Name == "keyrange_read" {
			get = c.KeyRangeRead
		}
		raw, err := get(ctx)
		if err != nil {
			return "", err
		}
		mode := ""
		if len(cmd.Args) > 0 {
			mode = cmd.Args[0]
		}
		return FormatRanges(raw, mode)
	}
	return "", parseErrorf("unknown command %q; type help", cmd.Name)
}

// conn returns the open client, dialing it on first use.
func (s *Session) conn(ctx context.Context) (Client, error) {
	if s.client != nil {
		return s.client, nil
	}
	if s.offline {
		return nil, ErrNotConnected
	}
	c, err := s.dial(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	s.client = c
	return c, nil
}

// connect switches to addr (or back to the startup configuration) and dials
// now, so a wrong address shows at once. After a failed dial the new target
// stays: key commands retry it.
func (s *Session) connect(ctx context.Context, args []string) (string, error) {
	cfg := s.start
	if len(args) == 1 {
		cfg.Servers = []string{args[0]}
	}
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	_ = s.Close() // replaced below; its close error changes nothing
	// The login carries over to the new target.
	cfg.User, cfg.Password, cfg.PasswordFile = s.cfg.User, s.cfg.Password, s.cfg.PasswordFile
	s.cfg, s.offline = cfg, false
	if _, err := s.conn(ctx); err != nil {
		return "", err
	}
	return "connected to " + s.Target(), nil
}

func (s *Session) logLevel(level string) (string, error) {
	if s.setLevel == nil {
		return "", ErrNoLogLevel
	}
	if err := s.setLevel(level); err != nil {
		return "", err
	}
	return "log level: " + level, nil
}

// login asks for user's password (or takes the configured one, for a
// script) and logs in; later commands and connections run as user.
func (s *Session) login(ctx context.Context, user string) (string, error) {
	cfg := s.cfg
	cfg.User = user
	if s.password != nil {
		pw, err := s.password(user)
		if err != nil {
			return "", err
		}
		cfg.Password, cfg.PasswordFile = pw, ""
	} else if cfg.Password == "" && cfg.PasswordFile == "" {
		return "", ErrNoPassword
	}
	pw, err := cfg.ReadPassword()
	if err != nil {
		return "", err
	}
	c, err := s.conn(ctx)
	if err != nil {
		return "", err
	}
	if err := c.Login(ctx, user, pw); err != nil {
		return "", err
	}
	s.cfg = cfg
	return "logged in as " + user, nil
}

// logout forgets the login; key commands then fail on a cluster with
// authentication.
func (s *Session) logout() string {
	if s.client != nil {
		s.client.Logout()
	}
	s.cfg.User, s.cfg.Password, s.cfg.PasswordFile = "", "", ""
	return "logged out"
}
