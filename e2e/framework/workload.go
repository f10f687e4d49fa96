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
	Prefix    string        // key prefix
	OpTimeout time.Duration // deadline of one operation (the library retries within it)
	Think     time.Duration // pause between two operations of a worker (keeps the rate modest)
}

// Key returns key i of the set.
func (w WorkloadConfig) Key(i int) string { return fmt.Sprintf("%s%d", w.Prefix, i) }

// RunWorkload runs the workload until ctx ends and returns its history.
// Every worker does gets (50%), puts of a value unique in the run (35%) and
// deletes (15%) on random keys of the set, recording each operation with its
// outcome. A worker whose write ended Unknown continues as a new porcupine
// client, since that write may still take effect at any later time.
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
				for n := 0; ctx.Err() == nil; n++ {
					op := doOp(ctx, cli, cfg, rng, id, fmt.Sprintf("c%d-w%d-%d", ci, w, n))
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

// Apply performs op with the library and fills in its result fields
// (Value for a get, Found); it returns the library's error.
func Apply(ctx context.Context, cli *kvclient.Client, op *Op) error {
	switch op.Kind {
	case OpGet:
		v, err := cli.Get(ctx, op.Key)
		if errors.Is(err, kvclient.ErrNotFound) {
			return nil
		}
		op.Value, op.Found = string(v), err == nil
		return err
	case OpPut:
		res, err := cli.Put(ctx, op.Key, []byte(op.Value))
		op.Found = res == kvclient.Updated
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
