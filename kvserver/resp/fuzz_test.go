package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzReadCommand: the reader never panics and refuses with a
// ProtocolError or an end of stream; what it accepts as multibulk reads
// back the same from its own encoding.
func FuzzReadCommand(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "PING\r\n", "set a \"b\\x41\"\r\n", "*0\r\n", "*1\r\n$-1\r\n",
		"*1\r\n$3\r\nab\r\n", "'a\\'b' c\n", "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$4\r\nPING\r\n",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxArgs: 64, MaxBulkBytes: 256, MaxRequestBytes: 1024}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), lim)
		for range 100 {
			args, err := r.ReadCommand()
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("ReadCommand(%q): %v", b, err)
				}
				return
			}
			if len(args) > lim.MaxArgs {
				t.Fatalf("%d arguments over the limit", len(args))
			}
			w := replies{}
			w.array(len(args))
			for _, a := range args {
				w.bulk(a)
			}
			if len(args) == 0 {
				continue
			}
			back, err := NewReader(bytes.NewReader(w.b), Limits{MaxArgs: MaxArgs, MaxBulkBytes: 1 << 20, MaxRequestBytes: 1 << 30}).ReadCommand()
			if err != nil || len(back) != len(args) {
				t.Fatalf("re-read %q: %v", w.b, err)
			}
			for i := range args {
				if !bytes.Equal(back[i], args[i]) {
					t.Fatalf("argument %d: %q, re-read %q", i, args[i], back[i])
				}
			}
		}
	})
}

// FuzzMatch: Match never panics, a pattern without special characters
// matches only itself, and "*"+p+"*" matches whatever contains p.
func FuzzMatch(f *testing.F) {
	f.Add("a*b?[c-d]\\e", "axxbycde")
	f.Add("[^", "x")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		_ = Match(pattern, s)
		if !strings.ContainsAny(pattern, `*?[\`) {
			if Match(pattern, s) != (pattern == s) {
				t.Fatalf("literal %q vs %q", pattern, s)
			}
			if strings.Contains(s, pattern) && !Match("*"+pattern+"*", s) {
				t.Fatalf("*%s* does not match %q", pattern, s)
			}
		}
	})
}
