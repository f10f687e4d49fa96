//go:build multihost

package multihost

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
)

// verify checks what must hold once the faults are healed: a fresh write
// succeeds, `ecs check` is clean, every acknowledged write of the workload
// and every loaded key reads back (from this host and from a client
// container), every server's metrics answer, and the history is
// linearizable.
func (c *cluster) verify(t *testing.T, cli *kvclient.Client, hist *framework.History, wl framework.WorkloadConfig) {
	c.waitHealthy(t, "after the faults")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if _, err := cli.Put(ctx, "multihost-final", []byte("final")); err != nil {
		t.Errorf("multihost: a write after the faults: %v (%s)", err, framework.KeyWhere(cli, "multihost-final"))
	}
	cancel()
	check := func(t testing.TB) framework.CheckJSON { return framework.CheckAt(t, c.ecsBin, c.l.endpoints()) }
	last, took, problem := framework.CheckClean(t, check, checkWithin)
	if problem != "" {
		t.Errorf("multihost: ecs check: %s", problem)
	} else {
		t.Logf("multihost: %s after %v", last.Summary(0), took.Round(100*time.Millisecond))
	}
	ops := finalReads(t, cli, hist, wl)
	total, failed, unknown := hist.Counts()
	lost := framework.LostWrites(ops, lastReads(ops))
	for _, l := range lost {
		t.Errorf("multihost: lost acknowledged write: %s", l)
	}
	t.Logf("multihost: workload: %d operations (%d failed, %d of unknown outcome), %d lost acknowledged writes",
		total, failed, unknown, len(lost))
	c.readLoaded(t, cli)
	if res := c.kvbench(t, "read-back", "--workload", "c", "--load=false", "--distribution", "uniform",
		"--duration", "3s"); res.Errors > 0 || res.Ops == 0 {
		t.Errorf("multihost: kvbench reads of the loaded keys: %d errors in %d reads", res.Errors, res.Ops)
	}
	c.checkMetrics(t)
	linearizable(t, ops)
}

// finalOp marks the final reads in the history: a client id of their own.
const finalOp = 1 << 20

// finalReads reads every workload key once more and adds the reads to the
// history, which it returns.
func finalReads(t *testing.T, cli *kvclient.Client, hist *framework.History, wl framework.WorkloadConfig) []framework.Op {
	for i := range wl.Keys {
		op := framework.Op{Client: finalOp, Kind: framework.OpGet, Key: wl.Key(i), Start: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := framework.Apply(ctx, cli, &op)
		cancel()
		op.End = time.Now()
		if err != nil {
			t.Errorf("multihost: final read of %s: %v (%s)", op.Key, err, framework.KeyWhere(cli, op.Key))
			continue
		}
		op.Outcome = framework.OK
		hist.Add(op)
	}
	return hist.Ops()
}

// lastReads maps each key to its final read.
func lastReads(ops []framework.Op) map[string]*framework.Op {
	final := map[string]*framework.Op{}
	for i := range ops {
		if ops[i].Client == finalOp {
			final[ops[i].Key] = &ops[i]
		}
	}
	return final
}

// readLoaded reads back every key kvbench loaded before the faults.
func (c *cluster) readLoaded(t *testing.T, cli *kvclient.Client) {
	var bad []string
	for i := range loadKeys {
		key := fmt.Sprintf("user%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := cli.Get(ctx, key)
		cancel()
		switch {
		case errors.Is(err, kvclient.ErrNotFound):
			bad = append(bad, key+": NOT_FOUND")
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v (%s)", key, err, framework.KeyWhere(cli, key)))
		case len(v) != loadValueBytes:
			bad = append(bad, fmt.Sprintf("%s: %d bytes, want %d", key, len(v), loadValueBytes))
		}
	}
	if len(bad) > 0 {
		t.Errorf("multihost: %d of %d loaded keys do not read back: %s", len(bad), loadKeys,
			framework.Shorten(strings.Join(bad, "; "), 2000))
		return
	}
	t.Logf("multihost: all %d loaded keys read back", loadKeys)
}

// checkMetrics fetches every server's /metrics at the address it
// registered (bound to its own address, it must serve again after the
// container was cut off and reconnected).
func (c *cluster) checkMetrics(t *testing.T) {
	st, err := framework.StatusAt(t, c.ecsBin, c.l.endpoints())
	if err != nil {
		t.Errorf("multihost: %v", err)
		return
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, s := range st.Servers {
		resp, err := hc.Get("http://" + s.Metrics + "/metrics")
		if err != nil {
			t.Errorf("multihost: %s metrics: %v", s.ID, err)
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("multihost: %s metrics at %s: %s", s.ID, s.Metrics, resp.Status)
		}
	}
}

// linearizable checks the history with porcupine; an undecided check is
// logged, not failed (the writes were checked above).
func linearizable(t *testing.T, ops []framework.Op) {
	dir, err := os.MkdirTemp("", "ecskv-multihost-")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	res, err := framework.CheckLinearizable(ops, porcupineTime, dir, "multihost")
	took := time.Since(began).Round(100 * time.Millisecond)
	switch {
	case err != nil:
		t.Errorf("multihost: porcupine visualisation: %v", err)
	case res.Result == porcupine.Illegal:
		t.Errorf("multihost: the history is not linearizable; visualisation: %s", res.Visualization)
	case res.Result == porcupine.Unknown:
		t.Logf("multihost: porcupine could not decide within %v; partial visualisation: %s", porcupineTime, res.Visualization)
	default:
		t.Logf("multihost: %d operations linearizable (porcupine, %v)", len(ops), took)
		_ = os.RemoveAll(dir)
	}
}
