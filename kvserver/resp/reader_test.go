package resp

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var testLimits = Limits{MaxArgs: MaxArgs, MaxBulkBytes: 1 << 20, MaxRequestBytes: 4 << 20}

func readAll(t *testing.T, raw string) ([][][]byte, error) {
	t.Helper()
	r := NewReader(strings.NewReader(raw), testLimits)
	var out [][][]byte
	for {
		args, err := r.ReadCommand()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, args)
	}
}

func strs(cmds [][][]byte) [][]string {
	var out [][]string
	for _, c := range cmds {
		var s []string
		for _, a := range c {
			s = append(s, string(a))
		}
		out = append(out, s)
	}
	return out
}

func TestReadCommand(t *testing.T) {
	tests := []struct {
		name, raw string
		want      [][]string
		err       string
	}{
		{"multibulk", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [][]string{{"GET", "k"}}, ""},
		{"binary bulk", "*1\r\n$4\r\na\r\nb\r\n", [][]string{{"a\r\nb"}}, ""},
		{"empty bulk", "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", [][]string{{"GET", ""}}, ""},
		{"empty array is no command", "*0\r\n*-1\r\n", [][]string{nil, nil}, ""},
		{"inline", "GET k\r\nset a b\n", [][]string{{"GET", "k"}, {"set", "a", "b"}}, ""},
		{"blank inline", "\r\n", [][]string{nil}, ""},
		{"cut inside", "*2\r\n$3\r\nGET\r\n", nil, "unexpected EOF"},
		{"cut inside a bulk", "*1\r\n$3\r\nGE", nil, "unexpected EOF"},
		{"inline without its end", "GET k", nil, "unexpected EOF"},
		{"leading zero count", "*01\r\n", nil, "invalid multibulk length"},
		{"plus count", "*+1\r\n", nil, "invalid multibulk length"},
		{"bulk leading zero", "*1\r\n$01\r\na\r\n", nil, "invalid bulk length"},
		{"empty bulk line", "*1\r\n\r\n", nil, `expected '$', got '` + "\r" + `'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.raw)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, strs(got))
		})
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		line string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"  a  b\tc ", []string{"a", "b", "c"}, false},
		{`"a b" 'c d'`, []string{"a b", "c d"}, false},
		{`"\x41\x4a\n\r\t\b\a\"\\z"`, []string{"AJ\n\r\t\b\a\"\\z"}, false},
		{`"\x4"`, []string{"x4"}, false},
		{`'it\'s' '\n'`, []string{"it's", `\n`}, false},
		{`""`, []string{""}, false},
		{`a"b"`, []string{`a"b"`}, false},
		{`"abc`, nil, true},
		{`"abc"d`, nil, true},
		{`'abc`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := SplitArgs([]byte(tt.line))
			if tt.err {
				var pe *ProtocolError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, "ERR Protocol error: unbalanced quotes in request", err.Error())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, strs([][][]byte{got})[0])
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "abc", true},
		{"a*", "abc", true},
		{"a*", "bac", false},
		{"*c", "abc", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a[bx]c", "abc", true},
		{"a[^b]c", "abc", false},
		{"a[a-c]c", "abc", true},
		{"a[c-a]c", "abc", true},
		{`a\*c`, "a*c", true},
		{`a\*c`, "abc", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"user:1*", "user:10", true},
		{"user:1*", "user:2", false},
		{"[abc", "a", true},
		{`\`, `\`, true},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 100), false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.s, func(t *testing.T) {
			require.Equal(t, tt.want, Match(tt.pattern, tt.s))
		})
	}
	require.Equal(t, "user:", literalPrefix("user:*"))
	require.Equal(t, "a", literalPrefix(`a\*`))
	require.Equal(t, "abc", literalPrefix("abc"))
}
