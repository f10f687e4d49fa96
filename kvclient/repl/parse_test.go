package repl

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Command
	}{
		{"blank", "   \t ", Command{}},
		{"comment", "  # put a b", Command{}},
		{"put joins words", "put k a  value\twith spaces ", Command{Name: "put", Args: []string{"k", "a value with spaces"}}},
		{"put quoted", `put "my key" "a  value"`, Command{Name: "put", Args: []string{"my key", "a  value"}}},
		{"put single quotes literal", `put k 'C:\dir "x"'`, Command{Name: "put", Args: []string{"k", `C:\dir "x"`}}},
		{"put escapes", `put k "a\"b\\c\nd\te\rf"`, Command{Name: "put", Args: []string{"k", "a\"b\\c\nd\te\rf"}}},
		{"put empty value", `put k ""`, Command{Name: "put", Args: []string{"k", ""}}},
		{"quote inside word is literal", `put k it's 5'10"`, Command{Name: "put", Args: []string{"k", `it's 5'10"`}}},
		{"backslash unquoted is literal", `put k C:\dir`, Command{Name: "put", Args: []string{"k", `C:\dir`}}},
		{"put mixed quoted words", `put k "a" b`, Command{Name: "put", Args: []string{"k", "a b"}}},
		{"ttl space", "put --ttl 10s k v", Command{Name: "put", Args: []string{"k", "v"}, TTL: 10 * time.Second}},
		{"ttl equals", "put --ttl=1m30s k v w", Command{Name: "put", Args: []string{"k", "v w"}, TTL: 90 * time.Second}},
		{"ttl after key is value", "put k v --ttl=10s", Command{Name: "put", Args: []string{"k", "v --ttl=10s"}}},
		{"quoted --ttl is a key", `put "--ttl" v`, Command{Name: "put", Args: []string{"--ttl", "v"}}},
		{"end of options", "put -- --k v", Command{Name: "put", Args: []string{"--k", "v"}}},
		{"single dash key", "put -1 v", Command{Name: "put", Args: []string{"-1", "v"}}},
		{"put no value deletes", "put k", Command{Name: "delete", Args: []string{"k"}}},
		{"put null deletes", "put k null", Command{Name: "delete", Args: []string{"k"}}},
		{"put quoted null stores it", `put k "null"`, Command{Name: "put", Args: []string{"k", "null"}}},
		{"put null among words stores them", "put k null x", Command{Name: "put", Args: []string{"k", "null x"}}},
		{"get", "get k", Command{Name: "get", Args: []string{"k"}}},
		{"get meta", "get --meta k", Command{Name: "get", Args: []string{"k"}, Meta: true}},
		{"get quoted --meta is a key", `get "--meta"`, Command{Name: "get", Args: []string{"--meta"}}},
		{"get end of options", "get -- --meta", Command{Name: "get", Args: []string{"--meta"}}},
		{"put if absent", "put --if-absent k a b", Command{Name: "put", Args: []string{"k", "a b"}, Cond: Cond{Kind: CondAbsent}}},
		{"put if version", "put --if-version 17 k v", Command{Name: "put", Args: []string{"k", "v"}, Cond: Cond{Kind: CondVersion, Version: 17}}},
		{"put if version 0", "put --if-version=0 k v", Command{Name: "put", Args: []string{"k", "v"}, Cond: Cond{Kind: CondVersion}}},
		{"put if value quoted", `put --ttl 1m --if-value "old  v" k v`, Command{Name: "put", Args: []string{"k", "v"}, TTL: time.Minute, Cond: Cond{Kind: CondValue, Value: "old  v"}}},
		{"put if value empty", `put --if-value "" k v`, Command{Name: "put", Args: []string{"k", "v"}, Cond: Cond{Kind: CondValue}}},
		{"put if value inline", "put --if-value=--x k v", Command{Name: "put", Args: []string{"k", "v"}, Cond: Cond{Kind: CondValue, Value: "--x"}}},
		{"delete if version", "delete --if-version 3 k", Command{Name: "delete", Args: []string{"k"}, Cond: Cond{Kind: CondVersion, Version: 3}}},
		{"delete if value", "delete --if-value v k", Command{Name: "delete", Args: []string{"k"}, Cond: Cond{Kind: CondValue, Value: "v"}}},
		{"cas", `cas k old "new value"`, Command{Name: "cas", Args: []string{"k", "old", "new value"}}},
		{"incr", "incr n", Command{Name: "incr", Args: []string{"n"}}},
		{"incr delta", "incr n -007", Command{Name: "incr", Args: []string{"n", "-7"}}},
		{"decr", "DECR n 5", Command{Name: "decr", Args: []string{"n", "5"}}},
		{"expire", "expire k 90s", Command{Name: "expire", Args: []string{"k", "1m30s"}}},
		{"persist", "persist k", Command{Name: "persist", Args: []string{"k"}}},
		{"ttl", "ttl k", Command{Name: "ttl", Args: []string{"k"}}},
		{"name ignores case", "GET k", Command{Name: "get", Args: []string{"k"}}},
		{"delete", "delete 'a b'", Command{Name: "delete", Args: []string{"a b"}}},
		{"keyrange", "keyrange", Command{Name: "keyrange"}},
		{"keyrange_read", "keyrange_read", Command{Name: "keyrange_read"}},
		{"connect addr", "connect 127.0.0.1:5001", Command{Name: "connect", Args: []string{"127.0.0.1:5001"}}},
		{"connect host port", "connect localhost 5001", Command{Name: "connect", Args: []string{"localhost:5001"}}},
		{"connect ipv6", "connect ::1 5001", Command{Name: "connect", Args: []string{"[::1]:5001"}}},
		{"connect startup", "connect", Command{Name: "connect"}},
		{"disconnect", "disconnect", Command{Name: "disconnect"}},
		{"login", "login alice", Command{Name: "login", Args: []string{"alice"}}},
		{"logout", "logout", Command{Name: "logout"}},
		{"logLevel", "loglevel DEBUG", Command{Name: "logLevel", Args: []string{"debug"}}},
		{"logLevel off", "logLevel off", Command{Name: "logLevel", Args: []string{"off"}}},
		{"help", "help", Command{Name: "help"}},
		{"help alias", "help EXIT", Command{Name: "help", Args: []string{"quit"}}},
		{"quit", "quit", Command{Name: "quit"}},
		{"exit", "exit", Command{Name: "quit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.line)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			again, err := Parse(got.String())
			require.NoError(t, err, "line %q", got.String())
			require.Equal(t, got, again)
		})
	}
}

const putUsage = "put [--ttl DURATION] [--if-absent | --if-version N | --if-value OLD] KEY VALUE..."

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		line string
		want string
	}{
		{"unknown", "pt k v", `unknown command "pt"; type help`},
		{"unknown help topic", "help x", `unknown command "x"; type help`},
		{"put ttl, no value", "put --ttl 5s k", "put: --ttl needs a value (put KEY with no value, or null, deletes KEY)"},
		{"put nothing", "put", "usage: " + putUsage},
		{"put ttl no key", "put --ttl 5s", "usage: " + putUsage},
		{"put ttl no value", "put --ttl", "usage: " + putUsage},
		{"get no key", "get", "usage: get [--meta] KEY"},
		{"get two keys", "get a b", "usage: get [--meta] KEY"},
		{"delete no key", "delete", "usage: delete [--if-version N | --if-value OLD] KEY"},
		{"keyrange arg", "keyrange x", "usage: keyrange [--table | --raw]"},
		{"get unknown option", "get --hex k", "get: unknown option --hex; options go before KEY (quote a KEY that starts with --)"},
		{"get meta no key", "get --meta", "usage: get [--meta] KEY"},
		{"two conditions", "put --if-absent --if-version 1 k v", "put: only one of --if-absent, --if-version and --if-value"},
		{"bad version", "put --if-version -1 k v", `put: --if-version wants a version >= 0 (0: the key is absent), got "-1"`},
		{"version no value", "put --if-version", "put: --if-version needs a value"},
		{"put condition no value", "put --if-absent k", "put: a condition needs a value (for a conditional delete: delete --if-version N KEY)"},
		{"put condition null", "put --if-version 2 k null", "put: a condition needs a value (for a conditional delete: delete --if-version N KEY)"},
		{"delete if absent", "delete --if-absent k", "delete: unknown option --if-absent"},
		{"delete two keys", "delete --if-version 1 a b", "usage: delete [--if-version N | --if-value OLD] KEY"},
		{"delete bad version", "delete --if-version x k", `delete: --if-version wants a version >= 0 (0: the key is absent), got "x"`},
		{"cas two args", "cas k old", "usage: cas KEY OLD NEW"},
		{"incr no key", "incr", "usage: incr KEY [DELTA]"},
		{"incr bad delta", "incr n 1.5", `incr: DELTA must be an integer from -9223372036854775808 to 9223372036854775807, got "1.5"`},
		{"incr delta too big", "incr n 9223372036854775808", `incr: DELTA must be an integer from -9223372036854775808 to 9223372036854775807, got "9223372036854775808"`},
		{"decr min int", "decr n -9223372036854775808", `decr: DELTA must be an integer from -9223372036854775807 to 9223372036854775807, got "-9223372036854775808"`},
		{"expire no duration", "expire k", "usage: expire KEY DURATION"},
		{"expire bad duration", "expire k 10", `expire: bad DURATION "10": want a duration such as 30s, 5m or 2h`},
		{"expire too short", "expire k 500us", "expire: DURATION must be at least 1ms, got 500us"},
		{"expire negative", "expire k -1s", "expire: DURATION must be at least 1ms, got -1s"},
		{"persist two", "persist a b", "usage: persist KEY"},
		{"ttl none", "ttl", "usage: ttl KEY"},
		{"quit arg", "quit now", "usage: quit"},
		{"login no name", "login", "usage: login NAME"},
		{"help two", "help a b", "usage: help [CMD]"},
		{"connect three", "connect a b c", "usage: connect [HOST:PORT | HOST PORT]"},
		{"connect no port", "connect localhost", `connect: want HOST:PORT or HOST PORT with a port 0-65535, got "localhost"`},
		{"connect bad port", "connect h 99999", `connect: want HOST:PORT or HOST PORT with a port 0-65535, got "h:99999"`},
		{"bad level", "logLevel loud", `logLevel: unknown level "loud"; want debug|info|warn|error|off`},
		{"bad ttl", "put --ttl 10 k v", `put: bad --ttl "10": want a duration such as 30s, 5m or 2h`},
		{"zero ttl", "put --ttl=0s k v", "put: --ttl must be positive, got 0s"},
		{"negative ttl", "put --ttl -1s k v", "put: --ttl must be positive, got -1s"},
		{"unknown option", "put --foo k v", "put: unknown option --foo; options go before KEY (quote a KEY that starts with --)"},
		{"unterminated double", `put k "abc`, `unterminated " quote`},
		{"unterminated single", `put k 'abc`, `unterminated ' quote`},
		{"trailing backslash", `put k "abc\`, `unterminated " quote`},
		{"bad escape", `put k "C:\dir"`, `invalid escape: backslash before 'd' in double quotes; write \\ for a backslash, or use single quotes`},
		{"text after quote", `put k "a"b`, `text right after a closing " quote; put a space after it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.line)
			require.ErrorIs(t, err, ErrParse)
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestFromArgs(t *testing.T) {
	got, err := FromArgs("put", []string{"--ttl", "a", "b"})
	require.NoError(t, err)
	require.Equal(t, Command{Name: "put", Args: []string{"--ttl", "a b"}}, got)
	require.Equal(t, `put "--ttl" "a b"`, got.String())

	_, err = FromArgs("get", nil)
	require.EqualError(t, err, "usage: get [--meta] KEY")
	_, err = FromArgs("nope", nil)
	require.EqualError(t, err, `unknown command "nope"; type help`)
}

func TestHelp(t *testing.T) {
	all := Help("")
	for _, name := range Names() {
		require.Contains(t, all, name)
	}
	require.Contains(t, Help("put"), "usage: put [--ttl DURATION] [--if-absent | --if-version N | --if-value OLD] KEY VALUE...")
	require.Contains(t, all, "\n  "+putUsage+"\n", "a usage too long for the column gets its own line")
	require.Contains(t, all, "\n  get [--meta] KEY   ", "the others share the column")
	require.Contains(t, Help("exit"), "usage: quit")
	require.Equal(t, `unknown command "x"; type help`, Help("x"))
}
