package storage

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestScanKeysRange: ScanKeys stays in its namespace and prefix, resumes
// strictly after a key, and stops when asked.
func TestScanKeysRange(t *testing.T) {
	s := openTest(t, testOptions())
	seq := uint64(0)
	for _, k := range []struct{ ns, key string }{
		{"u", "a"}, {"u", "p"}, {"u", "p\x00"}, {"u", "p1"}, {"u", "p\xff"}, {"u", "p\xff\xff1"}, {"u", "q"},
		{"u2", "p2"}, {"", "p3"}, {"u\x01", "p4"}, {"v", "p5"},
	} {
		seq++
		put(t, s, 2, seq, k.ns, k.key, "v-"+k.key, 0)
	}
	put(t, s, 3, 1, "u", "p9", "other partition", 0)
	scan := func(ns, prefix, after string, stopAt int) []string {
		sn := s.NewSnapshot()
		defer sn.Close()
		var got []string
		var a []byte
		if after != "" {
			a = []byte(after)
		}
		err := sn.ScanKeys(2, []byte(ns), []byte(prefix), a, func(key []byte, r Record) (bool, error) {
			require.Equal(t, "v-"+string(key), string(r.Value))
			got = append(got, string(key))
			return len(got) != stopAt, nil
		})
		require.NoError(t, err)
		return got
	}
	for _, tc := range []struct {
		name, ns, prefix, after string
		stopAt                  int
		want                    []string
	}{
		{name: "namespace", ns: "u", want: []string{"a", "p", "p\x00", "p1", "p\xff", "p\xff\xff1", "q"}},
		{name: "prefix", ns: "u", prefix: "p", want: []string{"p", "p\x00", "p1", "p\xff", "p\xff\xff1"}},
		{name: "prefix ending in 0xff", ns: "u", prefix: "p\xff", want: []string{"p\xff", "p\xff\xff1"}},
		{name: "after", ns: "u", prefix: "p", after: "p", want: []string{"p\x00", "p1", "p\xff", "p\xff\xff1"}},
		{name: "after below the prefix", ns: "u", prefix: "p", after: "a", want: []string{"p", "p\x00", "p1", "p\xff", "p\xff\xff1"}},
		{name: "after past the prefix", ns: "u", prefix: "p", after: "q", want: nil},
		{name: "stop", ns: "u", stopAt: 2, want: []string{"a", "p"}},
		{name: "empty namespace", ns: "", want: []string{"p3"}},
		{name: "other namespace", ns: "u2", want: []string{"p2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, scan(tc.ns, tc.prefix, tc.after, tc.stopAt))
		})
	}
	sn := s.NewSnapshot()
	defer sn.Close()
	require.ErrorIs(t, sn.ScanKeys(2, []byte("a\x00b"), nil, nil, nil), ErrBadNamespace)
}
