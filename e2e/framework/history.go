package framework

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
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
	OpCAS  // put Value if the key holds Expect (or is absent, ExpectAbsent)
	OpIncr // add Delta to an integer value (absent: 0); Value is the result
)

func (k OpKind) String() string { return [...]string{"get", "put", "delete", "cas", "incr"}[k] }

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
// key existed (SUCCESS vs NOT_FOUND); for a cas, Value is what it writes
// and Held whether the condition held; for an incr, Value is the result.
// Version, when not 0, is the key's version the server answered: of the
// value read, of the write, or the current one of a failed cas.
type Op struct {
	Client       int
	Kind         OpKind
	Key, Value   string
	Expect       string // cas
	ExpectAbsent bool   // cas
	Delta        int64  // incr
	Found        bool
	Held         bool // cas
	Version      uint64
	Outcome      Outcome
	Start, End   time.Time
	Err          string
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

// kvState is the model's state of one key: its value, the version of that
// value when known (0: unknown, or absent), and a version every later
// write's is above (a key's versions only grow).
type kvState struct {
	exists bool
	value  string
	ver    uint64
	floor  uint64
}

// wrote is the state after op wrote value (its version known if op is OK).
func (st kvState) wrote(op Op, value string) kvState {
	v := op.Version
	if op.Outcome != OK {
		v = 0
	}
	return kvState{exists: true, value: value, ver: v, floor: max(st.floor, v)}
}

// newVersion reports whether a write's answered version can be new.
func (st kvState) newVersion(op Op) bool { return op.Version == 0 || op.Version > st.floor }

// sawVersion reports whether v (0: not answered) can be the current
// value's version, and returns the state knowing it.
func (st kvState) sawVersion(v uint64) (bool, kvState) {
	switch {
	case v == 0:
		return true, st
	case st.ver != 0:
		return v == st.ver, st
	case v <= st.floor:
		return false, st
	}
	st.ver, st.floor = v, v
	return true, st
}

// step is the model's transition for a cas.
func (st kvState) stepCAS(op Op) (bool, kvState) {
	holds := !st.exists
	if !op.ExpectAbsent {
		holds = st.exists && st.value == op.Expect
	}
	switch {
	case op.Outcome == Unknown && holds:
		return true, st.wrote(op, op.Value)
	case op.Outcome == Unknown:
		return true, st
	case op.Held != holds:
		return false, st
	case holds:
		return st.newVersion(op), st.wrote(op, op.Value)
	case !st.exists:
		return op.Version == 0, st
	}
	return st.sawVersion(op.Version)
}

// stepIncr is the model's transition for an incr.
func (st kvState) stepIncr(op Op) (bool, kvState) {
	var cur int64
	if st.exists {
		n, err := strconv.ParseInt(st.value, 10, 64)
		if err != nil {
			return op.Outcome == Unknown, st // the workload keeps counters integers
		}
		cur = n
	}
	next := strconv.FormatInt(cur+op.Delta, 10)
	if op.Outcome == Unknown {
		return true, st.wrote(op, next)
	}
	return op.Value == next && st.newVersion(op), st.wrote(op, next)
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
			if !st.exists || st.value != op.Value {
				return false, st
			}
			return st.sawVersion(op.Version)
		case OpPut:
			ok := op.Outcome == Unknown || op.Found == st.exists && st.newVersion(op)
			return ok, st.wrote(op, op.Value)
		case OpCAS:
			return st.stepCAS(op)
		case OpIncr:
			return st.stepIncr(op)
		default:
			return op.Outcome == Unknown || op.Found == st.exists, kvState{floor: st.floor}
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
			return fmt.Sprintf("get(%s) -> %q v%d", op.Key, op.Value, op.Version)
		case op.Kind == OpPut:
			return fmt.Sprintf("put(%s, %q) -> %s v%d", op.Key, op.Value, map[bool]string{true: "UPDATE", false: "SUCCESS"}[op.Found], op.Version)
		case op.Kind == OpCAS && op.ExpectAbsent:
			return fmt.Sprintf("cas(%s, absent -> %q) -> held=%v v%d", op.Key, op.Value, op.Held, op.Version)
		case op.Kind == OpCAS:
			return fmt.Sprintf("cas(%s, %q -> %q) -> held=%v v%d", op.Key, op.Expect, op.Value, op.Held, op.Version)
		case op.Kind == OpIncr:
			return fmt.Sprintf("incr(%s, %d) -> %s v%d", op.Key, op.Delta, op.Value, op.Version)
		default:
			return fmt.Sprintf("delete(%s) -> %s", op.Key, map[bool]string{true: "SUCCESS", false: "NOT_FOUND"}[op.Found])
		}
	},
	DescribeState: func(state any) string {
		st := state.(kvState)
		if !st.exists {
			return fmt.Sprintf("<none> (versions > %d)", st.floor)
		}
		return fmt.Sprintf("%q v%d (versions > %d)", st.value, st.ver, st.floor)
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
// from a write not finished before that one began. Keys written by cas or
// incr are left to the linearizability check (with the final reads in the
// history): an incr of unknown outcome leaves no value to explain by.
func LostWrites(ops []Op, final map[string]*Op) []string {
	lastAck := map[string]Op{}
	counters := map[string]bool{}
	for _, op := range ops {
		if op.Kind == OpCAS || op.Kind == OpIncr {
			counters[op.Key] = true
		}
	}
	for _, op := range ops {
		if op.Kind == OpGet || op.Outcome != OK || counters[op.Key] {
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
