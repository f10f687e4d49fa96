package framework

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// seqOps gives ops one client and back-to-back times, in order.
func seqOps(ops ...Op) []Op {
	t0 := time.Unix(0, 0)
	for i := range ops {
		ops[i].Start, ops[i].End = t0.Add(time.Duration(2*i)), t0.Add(time.Duration(2*i+1))
		if ops[i].Key == "" {
			ops[i].Key = "k"
		}
	}
	return ops
}

func linearizable(t *testing.T, ops []Op) bool {
	t.Helper()
	res, _ := CheckLinearizable(ops, 10*time.Second, t.TempDir(), "h")
	require.NotEqual(t, porcupine.Unknown, res.Result)
	return res.Result == porcupine.Ok
}

// TestKVModelConditionalWrites: the model accepts the histories a correct
// store gives and refuses each kind of wrong answer.
func TestKVModelConditionalWrites(t *testing.T) {
	good := seqOps(
		Op{Kind: OpCAS, ExpectAbsent: true, Value: "1", Held: true, Version: 3},
		Op{Kind: OpGet, Value: "1", Found: true, Version: 3},
		Op{Kind: OpCAS, ExpectAbsent: true, Value: "9", Held: false, Version: 3},
		Op{Kind: OpIncr, Delta: 4, Value: "5", Version: 7},
		Op{Kind: OpCAS, Expect: "5", Value: "6", Held: true, Version: 8},
		Op{Kind: OpCAS, Expect: "5", Value: "0", Held: false, Version: 8},
		Op{Kind: OpDelete, Found: true},
		Op{Kind: OpIncr, Delta: -2, Value: "-2", Version: 12},
	)
	require.True(t, linearizable(t, good))

	bad := map[string]func([]Op){
		"cas held on a present key":      func(h []Op) { h[2].Held = true },
		"cas failed on the right value":  func(h []Op) { h[4].Held = false },
		"incr from the wrong base":       func(h []Op) { h[3].Value = "4" },
		"incr after delete not from 0":   func(h []Op) { h[7].Value = "4" },
		"version went back":              func(h []Op) { h[4].Version = 6 },
		"read saw another version":       func(h []Op) { h[1].Version = 4 },
		"failed cas saw another version": func(h []Op) { h[5].Version = 7 },
	}
	for name, spoil := range bad {
		h := append([]Op(nil), good...)
		spoil(h)
		require.False(t, linearizable(t, h), name)
	}

	// An incr of unknown outcome may have applied: a later read of its
	// result is linearizable, and so is one without it.
	for _, v := range []string{"1", "2"} {
		h := seqOps(
			Op{Kind: OpIncr, Delta: 1, Value: "1", Version: 2},
			Op{Kind: OpIncr, Delta: 1, Outcome: Unknown},
			Op{Kind: OpGet, Value: v, Found: true},
		)
		h[1].End = time.Unix(0, 1<<40)
		require.True(t, linearizable(t, h), "read %s", v)
	}
}
