package framework

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// OpKind is a key-value operation of the workload.
type OpKind int

// Operation kinds.
const (
	OpGet OpKind = iota
	OpPut
	OpDelete
)

func (k OpKind) String() string { return [...]string{"get", "put", "delete"}[k] }

// Outcome is what a client learnt of an operation.
type Outcome int

// Outcomes: OK is a definite answer; Failed means the operation certainly
// took no effect (it is left out of the check); Unknown means a write may
// or may not have been applied (it stays in the history with an open end).
const (
	OK Outcome = iota
	Failed
	Unknown
)

func (o Outcome) String() string { return [...]string{"ok", "failed", "unknown"}[o] }

// Op is one recorded operation. For a get, Value is what it read and Found
// whether the key existed; for a put, Value is what it wrote and Found
// whether the key existed before (UPDATE); for a delete, Found whether the
// key existed (SUCCESS vs NOT_FOUND).
type Op struct {
	Client     int
	Kind       OpKind
	Key, Value string
	Found      bool
	Outcome    Outcome
	Start, End time.Time
	Err        string
}

// History records operations from many goroutines.
type History struct {
	mu  sync.Mutex // guards ops
	ops []Op
}

// Add records one finished operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// Ops returns a copy of the operations so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Counts returns how many operations had each outcome.
func (h *History) Counts() (total, failed, unknown int) {
	for _, op := range h.Ops() {
		total++
		switch op.Outcome {
		case Failed:
			failed++
		case Unknown:
			unknown++
		}
	}
	return total, failed, unknown
}

// kvState is the model's state of one key.
type kvState struct {
	exists bool
	value  string
}

// KVModel is porcupine's model of the store, partitioned per key: get,
// put (created or updated) and delete (found or not) on independent
// registers. An Unknown write has no output: it may take effect at any
// point after it began, or never.
var KVModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, o := range history {
			k := o.Input.(Op).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], o)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return kvState{} },
	Step: func(state, input, _ any) (bool, any) {
		st, op := state.(kvState), input.(Op)
		switch op.Kind {
		case OpGet:
			if !op.Found {
				return !st.exists, st
			}
			return st.exists && st.value == op.Value, st
		case OpPut:
			next := kvState{exists: true, value: op.Value}
			return op.Outcome == Unknown || op.Found == st.exists, next
		default:
			return op.Outcome == Unknown || op.Found == st.exists, kvState{}
		}
	},
	DescribeOperation: func(input, _ any) string {
		op := input.(Op)
		switch {
		case op.Outcome == Unknown:
			return fmt.Sprintf("%s(%s, %q) -> unknown", op.Kind, op.Key, op.Value)
		case op.Kind == OpGet && !op.Found:
			return fmt.Sprintf("get(%s) -> NOT_FOUND", op.Key)
		case op.Kind == OpGet:
			return fmt.Sprintf("get(%s) -> %q", op.Key, op.Value)
		case op.Kind == OpPut:
			return fmt.Sprintf("put(%s, %q) -> %s", op.Key, op.Value, map[bool]string{true: "UPDATE", false: "SUCCESS"}[op.Found])
		default:
			return fmt.Sprintf("delete(%s) -> %s", op.Key, map[bool]string{true: "SUCCESS", false: "NOT_FOUND"}[op.Found])
		}
	},
	DescribeState: func(state any) string {
		st := state.(kvState)
		if !st.exists {
			return "<none>"
		}
		return fmt.Sprintf("%q", st.value)
	},
}

// porcupineOps turns the history into porcupine's operations: failed ones
// dropped, unknown ones open-ended (returning at infinity).
func porcupineOps(ops []Op) []porcupine.Operation {
	var t0 time.Time
	for _, op := range ops {
		if t0.IsZero() || op.Start.Before(t0) {
			t0 = op.Start
		}
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if op.Outcome == Failed {
			continue
		}
		ret := int64(op.End.Sub(t0))
		if op.Outcome == Unknown {
			ret = math.MaxInt64
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: op, Output: nil,
			Call: int64(op.Start.Sub(t0)), Return: ret})
	}
	return out
}

// LinearizabilityResult is the outcome of CheckLinearizable.
type LinearizabilityResult struct {
	Result porcupine.CheckResult
	// Visualization is the HTML file written for an Illegal (or timed-out)
	// history; "" otherwise.
	Visualization string
}

// CheckLinearizable checks the history with porcupine within timeout and,
// unless it is linearizable, writes porcupine's HTML visualisation to
// dir/name.html.
func CheckLinearizable(ops []Op, timeout time.Duration, dir, name string) (LinearizabilityResult, error) {
	res, info := porcupine.CheckOperationsVerbose(KVModel, porcupineOps(ops), timeout)
	out := LinearizabilityResult{Result: res}
	if res == porcupine.Ok {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return out, err
	}
	out.Visualization = filepath.Join(dir, name+".html")
	return out, porcupine.VisualizePath(KVModel, info, out.Visualization)
}

// LostWrites returns, per key, a description of every acknowledged write
// the final read does not reflect: the final value (final[key], ok=false
// for NOT_FOUND) must come from the last acknowledged write of the key or
// from a write not finished before that one began.
func LostWrites(ops []Op, final map[string]*Op) []string {
	lastAck := map[string]Op{}
	for _, op := range ops {
		if op.Kind == OpGet || op.Outcome != OK {
			continue
		}
		if a, ok := lastAck[op.Key]; !ok || op.End.After(a.End) {
			lastAck[op.Key] = op
		}
	}
	var lost []string
	for key, a := range lastAck {
		f := final[key]
		if f == nil {
			lost = append(lost, fmt.Sprintf("%s: not read back", key))
			continue
		}
		if explained(ops, a, f) {
			continue
		}
		got := "NOT_FOUND"
		if f.Found {
			got = fmt.Sprintf("%q", f.Value)
		}
		lost = append(lost, fmt.Sprintf("%s: last acknowledged %s %q (at %s) but the final read is %s",
			key, a.Kind, a.Value, a.End.Format("15:04:05.000"), got))
	}
	sort.Strings(lost)
	return lost
}

// explained reports whether the final read f can follow the last
// acknowledged write a: it reads a's effect, or that of a write (any
// outcome but Failed) that did not end before a began.
func explained(ops []Op, a Op, f *Op) bool {
	for _, w := range ops {
		if w.Kind == OpGet || w.Key != a.Key || w.Outcome == Failed {
			continue
		}
		if w.Outcome == OK && w.End.Before(a.Start) {
			continue
		}
		switch {
		case w.Kind == OpPut && f.Found && w.Value == f.Value:
			return true
		case w.Kind == OpDelete && !f.Found:
			return true
		}
	}
	return false
}
