package framework

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecskv/ecskv/kvclient"
)

// WorkloadConfig shapes RunWorkload.
type WorkloadConfig struct {
	Clients   int           // library clients (connections, rings of their own)
	Workers   int           // sequential callers per client
	Keys      int           // the contended key set: Prefix0..Prefix<Keys-1>
	Counters  int           // integer keys for cas and incr: Prefixn0..; 0: none
	Prefix    string        // key prefix
	OpTimeout time.Duration // deadline of one operation (the library retries within it)
	Think     time.Duration // pause between two operations of a worker (keeps the rate modest)
}

// Key returns key i of the set.
func (w WorkloadConfig) Key(i int) string { return fmt.Sprintf("%s%d", w.Prefix, i) }

// Counter returns integer key i.
func (w WorkloadConfig) Counter(i int) string { return fmt.Sprintf("%sn%d", w.Prefix, i) }

// AllKeys returns the keys and the counters.
func (w WorkloadConfig) AllKeys() []string {
	out := make([]string, 0, w.Keys+w.Counters)
	for i := range w.Keys {
		out = append(out, w.Key(i))
	}
	for i := range w.Counters {
		out = append(out, w.Counter(i))
	}
	return out
}

// RunWorkload runs the workload until ctx ends and returns its history.
// Every worker does gets (50%), puts of a value unique in the run (35%) and
// deletes (15%) on random keys of the set, recording each operation with its
// outcome; with counters, a quarter of its operations go to them instead:
// gets, increments and compare-and-swaps from the value it last saw. A
// worker whose write ended Unknown continues as a new porcupine client,
// since that write may still take effect at any later time.
func RunWorkload(ctx context.Context, clients []*kvclient.Client, cfg WorkloadConfig) *History {
	h := &History{}
	var next atomic.Int64 // porcupine client ids
	var wg sync.WaitGroup
	for ci, cli := range clients {
		for w := range cfg.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(ci), uint64(w)))
				id := int(next.Add(1) - 1)
				seen := map[string]*Op{} // counters: the last value read or written
				for n := 0; ctx.Err() == nil; n++ {
					var op Op
					if cfg.Counters > 0 && rng.IntN(4) == 0 {
						op = doCounterOp(ctx, cli, cfg, rng, id, seen)
					} else {
						op = doOp(ctx, cli, cfg, rng, id, fmt.Sprintf("c%d-w%d-%d", ci, w, n))
					}
					if ctx.Err() != nil && op.Outcome == Failed {
						break // cut short by the end of the run: not an operation
					}
					h.Add(op)
					if op.Outcome == Unknown {
						id = int(next.Add(1) - 1)
					}
					select {
					case <-ctx.Done():
					case <-time.After(cfg.Think):
					}
				}
			}()
		}
	}
	wg.Wait()
	return h
}

func doOp(ctx context.Context, cli *kvclient.Client, cfg WorkloadConfig, rng *rand.Rand, id int, value string) Op {
	op := Op{Client: id, Key: cfg.Key(rng.IntN(cfg.Keys))}
	switch r := rng.IntN(100); {
	case r < 50:
		op.Kind = OpGet
	case r < 85:
		op.Kind, op.Value = OpPut, value
	default:
		op.Kind = OpDelete
	}
	octx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
	defer cancel()
	op.Start = time.Now()
	err := Apply(octx, cli, &op)
	op.End = time.Now()
	classify(&op, err)
	return op
}

// doCounterOp is a get, an incr or a cas on a counter; a cas expects the
// value the worker last saw there (seen).
func doCounterOp(ctx context.Context, cli *kvclient.Client, cfg WorkloadConfig, rng *rand.Rand, id int, seen map[string]*Op) Op {
	op := Op{Client: id, Key: cfg.Counter(rng.IntN(cfg.Counters))}
	switch r := rng.IntN(3); {
	case r == 0:
		op.Kind = OpGet
	case r == 1:
		op.Kind, op.Delta = OpIncr, int64(1+rng.IntN(3))
	default:
		op.Kind, op.Value, op.ExpectAbsent = OpCAS, fmt.Sprint(rng.IntN(1000)), true
		if last := seen[op.Key]; last != nil {
			op.Expect, op.ExpectAbsent = last.Value, !last.Found && last.Kind == OpGet
		}
	}
	octx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
	defer cancel()
	op.Start = time.Now()
	err := Apply(octx, cli, &op)
	op.End = time.Now()
	classify(&op, err)
	if op.Outcome == OK {
		if op.Kind == OpCAS && !op.Held {
			delete(seen, op.Key) // read it again before the next cas
		} else {
			seen[op.Key] = &Op{Kind: op.Kind, Value: op.Value, Found: op.Found || op.Kind != OpGet}
		}
	}
	return op
}

// Apply performs op with the library and fills in its result fields
// (Value for a get or an incr, Found, Held, Version); it returns the
// library's error.
func Apply(ctx context.Context, cli *kvclient.Client, op *Op) error {
	var meta kvclient.Meta
	defer func() { op.Version = meta.Version }()
	switch op.Kind {
	case OpGet:
		v, err := cli.Get(ctx, op.Key, kvclient.WithMeta(&meta))
		if errors.Is(err, kvclient.ErrNotFound) {
			return nil
		}
		op.Value, op.Found = string(v), err == nil
		return err
	case OpPut:
		res, err := cli.Put(ctx, op.Key, []byte(op.Value), kvclient.WithMeta(&meta))
		op.Found = res == kvclient.Updated
		return err
	case OpCAS:
		cond := kvclient.IfValue([]byte(op.Expect))
		if op.ExpectAbsent {
			cond = kvclient.IfAbsent()
		}
		_, err := cli.Put(ctx, op.Key, []byte(op.Value), cond, kvclient.WithMeta(&meta))
		if errors.Is(err, kvclient.ErrConditionFailed) {
			return nil
		}
		op.Held = err == nil
		return err
	case OpIncr:
		n, err := cli.Incr(ctx, op.Key, op.Delta, kvclient.WithMeta(&meta))
		op.Value = fmt.Sprint(n)
		return err
	default:
		err := cli.Delete(ctx, op.Key)
		if errors.Is(err, kvclient.ErrNotFound) {
			return nil
		}
		op.Found = err == nil
		return err
	}
}

// classify sets op's outcome from the library's error: a read that failed
// and a write the library says never took effect (ErrUnavailable: no
// attempt reached a server) are Failed; any other failed write is Unknown.
func classify(op *Op, err error) {
	switch {
	case err == nil:
		op.Outcome = OK
	case op.Kind == OpGet || errors.Is(err, kvclient.ErrUnavailable):
		op.Outcome, op.Err = Failed, err.Error()
	default:
		op.Outcome, op.Err = Unknown, err.Error()
	}
}
