package resp

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// RedisVersion is the Redis version the front door reports (HELLO, INFO):
// the one whose commands and error texts it follows, so clients enable
// what it has (SET ... GET, HELLO 3) and nothing newer.
const RedisVersion = "7.2.0"

func connCommands() []*command {
	noAuth := func(c *command) *command { c.noAuth = true; return c }
	return []*command{
		plainCmd("ping", -1, flagsConn, cmdPing),
		plainCmd("echo", 2, flagsConn, cmdEcho),
		noAuth(plainCmd("quit", -1, flagsConn, cmdQuit)),
		noAuth(plainCmd("auth", -2, []string{"noscript", "loading", "stale", "fast", "no_auth"}, cmdAuth)),
		noAuth(plainCmd("hello", -1, []string{"noscript", "loading", "stale", "fast", "no_auth"}, cmdHello)),
		plainCmd("select", 2, flagsConn, cmdSelect),
		plainCmd("readonly", 1, flagsConn, cmdOK),
		plainCmd("readwrite", 1, flagsConn, cmdOK),
		plainCmd("info", -1, flagsAdmin, cmdInfo),
		container("client", flagsConn,
			plainCmd("setname", 3, flagsConn, cmdClientSetName),
			plainCmd("getname", 2, flagsConn, cmdClientGetName),
			plainCmd("setinfo", 4, flagsConn, cmdClientSetInfo),
			plainCmd("id", 2, flagsConn, cmdClientID),
		),
		commandCommand(),
		container("config", flagsAdmin,
			plainCmd("get", -3, flagsAdmin, cmdConfigGet),
		),
	}
}

func cmdOK(_ context.Context, s *session, _ [][]byte) string {
	s.out.ok()
	return resultOK
}

func cmdPing(_ context.Context, s *session, args [][]byte) string {
	switch len(args) {
	case 1:
		s.out.simple("PONG")
	case 2:
		s.out.bulk(args[1])
	default:
		s.out.err("ERR wrong number of arguments for 'ping' command")
		return resultRefused
	}
	return resultOK
}

func cmdEcho(_ context.Context, s *session, args [][]byte) string {
	s.out.bulk(args[1])
	return resultOK
}

func cmdQuit(_ context.Context, s *session, _ [][]byte) string {
	s.out.ok()
	s.quit = true
	return resultOK
}

// cmdSelect accepts database 0 only: the cluster has one keyspace.
func cmdSelect(_ context.Context, s *session, args [][]byte) string {
	n, ok := parseInt(args[1])
	switch {
	case !ok:
		s.out.err(errNotInteger)
	case n < -(1<<31) || n >= 1<<31:
		s.out.err("ERR value is out of range, value must between -2147483648 and 2147483647")
	case n != 0:
		s.out.err("ERR DB index is out of range")
	default:
		s.out.ok()
		return resultOK
	}
	return resultRefused
}

// cmdAuth is AUTH password (as the user "default") or AUTH user password.
func cmdAuth(ctx context.Context, s *session, args [][]byte) string {
	if len(args) > 3 {
		s.out.err(errSyntax)
		return resultRefused
	}
	user, password := "default", string(args[1])
	if len(args) == 3 {
		user, password = string(args[1]), string(args[2])
	}
	if msg := s.auth(ctx, user, password, len(args) == 2); msg != "" {
		s.out.err(msg)
		return resultRefused
	}
	s.out.ok()
	return resultOK
}

// auth logs in and returns Redis's refusal, or "". On a cluster without
// users only the user "default" logs in (as Redis's passwordless default
// user), and a bare password gets Redis's hint that none is configured.
func (s *session) auth(ctx context.Context, user, password string, bare bool) string {
	if !s.srv.cluster.AuthRequired() {
		switch {
		case bare:
			return "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
		case user == "default":
			return ""
		}
		return errWrongPass
	}
	err := s.login(ctx, user, password)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrBadCredentials), errors.Is(err, ErrAuthDisabled):
		return errWrongPass
	case errors.Is(err, ErrLoginThrottled):
		// Still WRONGPASS, which clients know as a refused login, but
		// saying when to try again.
		return "WRONGPASS " + strings.TrimPrefix(err.Error(), ErrLoginThrottled.Error()+": ")
	}
	return "ERR " + err.Error()
}

// cmdHello is HELLO [protover [AUTH user password] [SETNAME name]]: it
// switches the protocol and answers the server's description.
func cmdHello(ctx context.Context, s *session, args [][]byte) string {
	proto := s.out.proto
	if len(args) > 1 {
		n, ok := parseInt(args[1])
		if !ok {
			s.out.err("ERR Protocol version is not an integer or out of range")
			return resultRefused
		}
		if n != resp2 && n != resp3 {
			s.out.err("NOPROTO unsupported protocol version")
			return resultRefused
		}
		proto = int(n)
	}
	var user, password, name string
	var doAuth, doName bool
	for i := 2; i < len(args); i++ {
		opt := strings.ToUpper(string(args[i]))
		switch {
		case opt == "AUTH" && i+2 < len(args):
			user, password, doAuth = string(args[i+1]), string(args[i+2]), true
			i += 2
		case opt == "SETNAME" && i+1 < len(args):
			name, doName = string(args[i+1]), true
			i++
		default:
			s.out.err("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			return resultRefused
		}
	}
	if doAuth {
		if msg := s.auth(ctx, user, password, false); msg != "" {
			s.out.err(msg)
			return resultRefused
		}
	}
	if s.keyspace() == nil {
		s.out.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return resultRefused
	}
	if doName && !s.setName(name) {
		return resultRefused
	}
	s.out.proto = proto
	s.hello()
	return resultOK
}

func (s *session) hello() {
	w := &s.out
	w.mapOf(7)
	w.bulkString("server")
	w.bulkString("redis")
	w.bulkString("version")
	w.bulkString(RedisVersion)
	w.bulkString("proto")
	w.int(int64(w.proto))
	w.bulkString("id")
	w.int(s.id)
	w.bulkString("mode")
	w.bulkString("cluster")
	w.bulkString("role")
	w.bulkString("master")
	w.bulkString("modules")
	w.array(0)
}

// setName sets CLIENT SETNAME's name, or answers Redis's refusal.
func (s *session) setName(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < '!' || name[i] > '~' {
			s.out.err("ERR Client names cannot contain spaces, newlines or special characters.")
			return false
		}
	}
	s.name = name
	return true
}

func cmdClientSetName(_ context.Context, s *session, args [][]byte) string {
	if !s.setName(string(args[2])) {
		return resultRefused
	}
	s.out.ok()
	return resultOK
}

func cmdClientGetName(_ context.Context, s *session, _ [][]byte) string {
	if s.name == "" {
		s.out.null()
	} else {
		s.out.bulkString(s.name)
	}
	return resultOK
}

// cmdClientSetInfo takes the library name and version clients announce;
// nothing keeps them.
func cmdClientSetInfo(_ context.Context, s *session, args [][]byte) string {
	switch attr := strings.ToUpper(string(args[2])); attr {
	case "LIB-NAME", "LIB-VER":
		s.out.ok()
		return resultOK
	}
	s.out.err("ERR Unrecognized option '" + string(args[2]) + "'")
	return resultRefused
}

func cmdClientID(_ context.Context, s *session, _ [][]byte) string {
	s.out.int(s.id)
	return resultOK
}

// commandCommand is COMMAND: alone, every command's description.
func commandCommand() *command {
	c := container("command", flagsAdmin,
		plainCmd("count", 2, flagsAdmin, cmdCommandCount),
		plainCmd("docs", -2, flagsAdmin, cmdCommandDocs),
		plainCmd("info", -2, flagsAdmin, cmdCommandInfo),
		plainCmd("list", -2, flagsAdmin, cmdCommandList),
	)
	c.arity, c.run = -1, cmdCommand
	return c
}

func cmdCommand(_ context.Context, s *session, _ [][]byte) string {
	cmds := sortedCommands()
	s.out.array(len(cmds))
	for _, c := range cmds {
		describe(&s.out, c)
	}
	return resultOK
}

func cmdCommandCount(_ context.Context, s *session, _ [][]byte) string {
	s.out.int(int64(len(commands)))
	return resultOK
}

// cmdCommandDocs answers no documentation: redis-cli then uses the hints
// it carries.
func cmdCommandDocs(_ context.Context, s *session, _ [][]byte) string {
	s.out.mapOf(0)
	return resultOK
}

func cmdCommandInfo(ctx context.Context, s *session, args [][]byte) string {
	if len(args) == 2 {
		return cmdCommand(ctx, s, args)
	}
	s.out.array(len(args) - 2)
	for _, a := range args[2:] {
		if c, ok := commands[strings.ToLower(string(a))]; ok {
			describe(&s.out, c)
		} else {
			s.out.null()
		}
	}
	return resultOK
}

func cmdCommandList(_ context.Context, s *session, _ [][]byte) string {
	cmds := sortedCommands()
	s.out.array(len(cmds))
	for _, c := range cmds {
		s.out.bulkString(c.name)
	}
	return resultOK
}

// configParams are the parameters CONFIG GET knows, as a Redis Cluster
// without persistence of its own would answer them (the cluster syncs its
// writes itself): what redis-benchmark and clients read at start.
var configParams = [][2]string{
	{"appendonly", "no"}, {"cluster-enabled", "yes"}, {"databases", "1"}, {"maxmemory", "0"}, {"save", ""},
}

// cmdConfigGet is CONFIG GET pattern [pattern ...]: the parameters in
// the order their patterns came; unknown ones are left out, as in Redis.
func cmdConfigGet(_ context.Context, s *session, args [][]byte) string {
	var out [][2]string
	for _, pat := range args[2:] {
		for _, p := range configParams {
			if Match(strings.ToLower(string(pat)), p[0]) && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	s.out.mapOf(len(out))
	for _, p := range out {
		s.out.bulkString(p[0])
		s.out.bulkString(p[1])
	}
	return resultOK
}
