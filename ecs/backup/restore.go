package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/opclient"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Restore writes every record through the head of the partition the
// target's ring routes it to, as ordinary writes down the chain; so the
// target may have any number of servers and another P. Each record keeps
// its namespace and its absolute expiry; records expired by the time they
// are read are left out.

// restoreBatchBytes and restoreBatchRecords bound one Restore call; the
// server also bounds it by its largest put (restoreOpOverhead matches the
// server's count per record).
const (
	restoreBatchBytes   = 1 << 20
	restoreBatchRecords = 4096
	restoreOpOverhead   = 32
)

// RestoreReport says what Restore did.
type RestoreReport struct {
	Manifest *Manifest
	Records  int64 // records written
	Expired  int64 // records left out: expired before they were written
	Bytes    int64 // file bytes read
	// Conflicts are user records the target held with other values, left
	// as they were.
	Conflicts []string
	Duration  time.Duration
}

// Restore verifies the backup in dir and loads it into the cluster. It
// refuses a cluster that holds keys (unless opts.Force), one whose
// limits are smaller than the backup's, and one with another
// authentication setting (unless opts.Force).
func Restore(ctx context.Context, cli *clientv3.Client, cluster, dir string, opts Options) (*RestoreReport, error) {
	opts.defaults()
	start := time.Now()
	m, err := Verify(dir, nil)
	if err != nil {
		return nil, err
	}
	rs := &ringSource{cli: cli, cluster: cluster}
	ring, err := rs.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if err := fits(m, ring, opts.Force); err != nil {
		return nil, err
	}
	if !opts.Force {
		if err := checkEmpty(ctx, cli, cluster, opts.Dial); err != nil {
			return nil, err
		}
	}
	rep := &RestoreReport{Manifest: m}
	if rep.Conflicts, err = restoreUsers(ctx, cli, cluster, m.Etcd); err != nil {
		return nil, err
	}
	conns := newConnCache(opts.Dial)
	defer conns.close()
	r := &restoreRun{dir: dir, m: m, rs: rs, conns: conns, opts: opts, rep: rep}
	if err := r.run(ctx); err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// fits refuses a target whose limits would refuse some of the backup's
// records, or (unless force) whose authentication setting differs: the
// namespaces would not be the users'.
func fits(m *Manifest, r *ringmeta.Ring, force bool) error {
	switch {
	case r.Limits.MaxKeyBytes < m.Limits.MaxKeyBytes || r.Limits.MaxValueBytes < m.Limits.MaxValueBytes:
		return fmt.Errorf("%w: its limits (keys %d, values %d bytes) are below the backup's (%d, %d)", ErrIncompatible,
			r.Limits.MaxKeyBytes, r.Limits.MaxValueBytes, m.Limits.MaxKeyBytes, m.Limits.MaxValueBytes)
	case r.Auth != m.Auth && !force:
		return fmt.Errorf("%w: authentication is %s there and was %s in the backup (--force loads it anyway)", ErrIncompatible, onOff(r.Auth), onOff(m.Auth))
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// checkEmpty refuses a cluster in which any server holds a key.
func checkEmpty(ctx context.Context, cli *clientv3.Client, cluster string, dial opclient.AdminDialer) error {
	keys, parts, err := opclient.CountKeys(ctx, cli, cluster, dial)
	if err != nil {
		return err
	}
	if keys > 0 {
		return fmt.Errorf("%w: %d keys in %d partitions (restore loads into an empty cluster; --force loads anyway, overwriting keys of the same names)", ErrNotEmpty, keys, parts)
	}
	return nil
}

// restoreRun is one Restore's shared state.
type restoreRun struct {
	dir   string
	m     *Manifest
	rs    *ringSource
	conns *connCache
	opts  Options

	mu   sync.Mutex // guards rep's counters, prog and the Progress callback
	rep  *RestoreReport
	prog Progress
}

// run loads every file, opts.Parallel at a time.
func (r *restoreRun) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan FileEntry)
	go func() {
		defer close(next)
		for _, f := range r.m.Files {
			select {
			case next <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range r.opts.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range next {
				if err := r.file(ctx, f); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// batch is the records bound for one target partition.
type batch struct {
	recs  []*kvpb.Op
	bytes int
}

// file loads one file: its records are grouped by target partition and
// sent in batches.
func (r *restoreRun) file(ctx context.Context, f FileEntry) error {
	ring := r.rs.current()
	batches := map[int]*batch{}
	var n, expired, read int64
	send := func(p int, b *batch) error {
		if err := r.send(ctx, p, b.recs); err != nil {
			return err
		}
		n += int64(len(b.recs))
		delete(batches, p)
		return nil
	}
	_, err := ReadFile(filepath.Join(r.dir, f.File), r.m.FileLimits(), func(rec Record) error {
		read += int64(len(rec.NS) + len(rec.Key) + len(rec.Value) + 4)
		if rec.ExpiryMs != 0 && rec.ExpiryMs <= time.Now().UnixMilli() {
			expired++
			return nil
		}
		p := ring.PartitionOf(rec.NS, rec.Key)
		b := batches[p]
		size := len(rec.NS) + len(rec.Key) + len(rec.Value) + restoreOpOverhead
		if b != nil && (b.bytes+size > batchLimit(ring) || len(b.recs) >= restoreBatchRecords) {
			if err := send(p, b); err != nil {
				return err
			}
			b = nil
		}
		if b == nil {
			b = &batch{}
			batches[p] = b
		}
		b.recs = append(b.recs, &kvpb.Op{Ns: rec.NS, Key: rec.Key, Value: rec.Value, ExpiryMs: rec.ExpiryMs})
		b.bytes += size
		return nil
	})
	for p, b := range batches {
		if err != nil {
			break
		}
		err = send(p, b)
	}
	if err != nil {
		return fmt.Errorf("ecs: restore %s: %w", f.File, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Records += n
	r.rep.Expired += expired
	r.rep.Bytes += f.Bytes
	r.prog.PartsDone++
	r.prog.Records += n
	r.prog.Bytes += f.Bytes
	if r.opts.Progress != nil {
		pr := r.prog
		pr.Parts, pr.TotalBytes = len(r.m.Files), r.m.Bytes
		r.opts.Progress(pr)
	}
	return nil
}

// batchLimit is a batch's bound: restoreBatchBytes, or the server's if
// smaller (its largest put).
func batchLimit(r *ringmeta.Ring) int {
	return min(restoreBatchBytes, r.Limits.MaxKeyBytes+r.Limits.MaxValueBytes)
}

// send writes one batch at its partition's head, trying again at the head
// of a fresh ring while the head refuses or fails. The records are puts of
// absolute values, so writing them twice does no harm.
func (r *restoreRun) send(ctx context.Context, p int, recs []*kvpb.Op) error {
	var err error
	for try := range attempts {
		if try > 0 {
			if werr := sleepCtx(ctx, backoff(try)); werr != nil {
				return fmt.Errorf("partition %d: %w (last error: %v)", p, werr, err)
			}
			if _, rerr := r.rs.refresh(ctx); rerr != nil {
				err = rerr
				continue
			}
		}
		var retry bool
		if retry, err = r.trySend(ctx, p, recs); err == nil || !retry {
			return err
		}
	}
	return fmt.Errorf("partition %d: %d tries failed, the last: %w", p, attempts, err)
}

// trySend makes one Restore call; retry says whether another may succeed.
func (r *restoreRun) trySend(ctx context.Context, p int, recs []*kvpb.Op) (retry bool, err error) {
	ring := r.rs.current()
	ch := ring.Chain(p)
	srv, ok := ring.Server(ch.Head())
	if !ok {
		return true, fmt.Errorf("partition %d has no head in epoch %d", p, ring.Epoch)
	}
	ac, err := r.conns.get(srv.Addr)
	if err != nil {
		return true, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := ac.Restore(cctx, &kvpb.RestoreRequest{Partition: uint32(p), ChainVersion: ch.Version, Records: recs})
	switch {
	case err != nil && status.Code(err) == codes.InvalidArgument:
		return false, fmt.Errorf("%s refused the records: %w", srv.ID, err)
	case err != nil:
		return ctx.Err() == nil, fmt.Errorf("%s at %s: %w", srv.ID, srv.Addr, err)
	case resp.Status != kvpb.Status_SUCCESS && resp.Status != kvpb.Status_UPDATE:
		return true, fmt.Errorf("%s: %s %s", srv.ID, resp.Status, resp.Message)
	}
	return false, nil
}
