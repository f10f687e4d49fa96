package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	"github.com/ecskv/ecskv/ecs/opclient"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// Options tune Backup and Restore; the zero value is usable.
type Options struct {
	// Dial opens a server's Admin service (default: plaintext); on a
	// secure cluster it must present a member's certificate.
	Dial opclient.AdminDialer
	// Parallel is how many partitions (Backup) or files (Restore) are in
	// flight at once (default 4).
	Parallel int
	// Progress, when not nil, is called (from several goroutines, never at
	// once) as work is done.
	Progress func(Progress)
	// Force (Restore) loads into a cluster that holds keys, or whose
	// authentication setting differs from the backup's.
	Force bool
}

// Progress is how far a backup or restore is.
type Progress struct {
	PartsDone, Parts int   // Backup: partitions written; Restore: files loaded
	Records          int64 // records written (Backup) or restored (Restore)
	Bytes            int64 // file bytes written or read
	TotalBytes       int64 // Restore: the backup's size; Backup: 0 (unknown)
}

// attempts bounds the tries of one partition or one batch; the backoff
// between them grows to maxBackoff, so a failover (a few seconds) is
// ridden out.
const (
	attempts   = 40
	maxBackoff = time.Second
)

func (o *Options) defaults() {
	if o.Dial == nil {
		o.Dial = opclient.DialAdmin
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
}

// Backup writes a backup of the cluster into dir (created if missing; it
// must not hold a backup): one file per partition, streamed from the
// partition's tail, then the manifest. A partition whose tail fails or
// changes is started again, from scratch, at its new tail.
func Backup(ctx context.Context, cli *clientv3.Client, cluster, dir string, opts Options) (*Manifest, error) {
	opts.defaults()
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err == nil {
		return nil, fmt.Errorf("%w: %s already holds %s", ErrExists, dir, ManifestName)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	start := time.Now()
	rs := &ringSource{cli: cli, cluster: cluster}
	ring, err := rs.refresh(ctx)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Format: FormatVersion, Cluster: cluster, Epoch: ring.Epoch, Partitions: ring.Partitions,
		Replicas: ring.Replicas, Limits: ring.Limits, Auth: ring.Auth, StartedUnixMs: start.UnixMilli()}
	if m.Etcd, err = readUsers(ctx, cli, cluster); err != nil {
		return nil, err
	}
	conns := newConnCache(opts.Dial)
	defer conns.close()
	b := &backupRun{dir: dir, rs: rs, conns: conns, opts: opts, parts: ring.Partitions}
	files, err := b.run(ctx)
	if err != nil {
		return nil, err
	}
	m.Files = files
	m.sortFiles()
	for _, f := range m.Files {
		m.Records, m.Bytes = m.Records+f.Records, m.Bytes+f.Bytes
	}
	m.DurationMs = time.Since(start).Milliseconds()
	return m, WriteManifest(dir, m)
}

// backupRun is one Backup's shared state.
type backupRun struct {
	dir   string
	rs    *ringSource
	conns *connCache
	opts  Options
	parts int

	mu       sync.Mutex // guards prog and the Progress callback
	prog     Progress
	inFlight atomic.Int64 // bytes of files being written, for Progress
}

// run backs up every partition, opts.Parallel at a time.
func (b *backupRun) run(ctx context.Context) ([]FileEntry, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	go func() {
		defer close(next)
		for p := range b.parts {
			select {
			case next <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		files []FileEntry
		first error
	)
	for range b.opts.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				f, err := b.partition(ctx, p)
				mu.Lock()
				if err != nil && first == nil {
					first = err
					cancel()
				}
				files = append(files, f)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return files, ctx.Err()
}

// partition backs up partition p, trying again at the tail of the
// current ring while its tail fails or changes.
func (b *backupRun) partition(ctx context.Context, p int) (FileEntry, error) {
	var err error
	for try := range attempts {
		if try > 0 {
			if werr := sleepCtx(ctx, backoff(try)); werr != nil {
				return FileEntry{}, fmt.Errorf("ecs: backup of partition %d: %w (last error: %v)", p, werr, err)
			}
			if _, rerr := b.rs.refresh(ctx); rerr != nil {
				err = rerr
				continue
			}
		}
		var f FileEntry
		if f, err = b.tryPartition(ctx, p); err == nil {
			b.done(f)
			return f, nil
		}
	}
	return FileEntry{}, fmt.Errorf("ecs: backup of partition %d: %d tries failed, the last: %w", p, attempts, err)
}

// tryPartition streams partition p from its tail into its file.
func (b *backupRun) tryPartition(ctx context.Context, p int) (FileEntry, error) {
	ring := b.rs.current()
	ch := ring.Chain(p)
	srv, ok := ring.Server(ch.Tail())
	if !ok {
		return FileEntry{}, fmt.Errorf("partition %d has no tail in epoch %d", p, ring.Epoch)
	}
	ac, err := b.conns.get(srv.Addr)
	if err != nil {
		return FileEntry{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ac.Backup(ctx, &kvpb.BackupRequest{Partition: uint32(p), ChainVersion: ch.Version},
		grpc.MaxCallRecvMsgSize(ring.Limits.MessageBytes()))
	if err != nil {
		return FileEntry{}, fmt.Errorf("%s at %s: %w", srv.ID, srv.Addr, err)
	}
	fw, err := CreateFile(filepath.Join(b.dir, FileName(p)))
	if err != nil {
		return FileEntry{}, err
	}
	f := FileEntry{Partition: p, File: FileName(p), Tail: srv.ID}
	if err := b.receive(stream, fw, &f); err != nil {
		fw.Abort()
		return FileEntry{}, fmt.Errorf("%s at %s: %w", srv.ID, srv.Addr, err)
	}
	sum, err := fw.Close()
	if err != nil {
		return FileEntry{}, err
	}
	f.Records, f.Bytes, f.SHA256 = sum.Records, sum.Bytes, sum.SHA256
	return f, nil
}

// receive writes the stream's records into fw until its last chunk.
func (b *backupRun) receive(stream kvpb.Admin_BackupClient, fw *FileWriter, f *FileEntry) error {
	var shown int64 // bytes of this file already counted in inFlight
	defer func() { b.inFlight.Add(-shown) }()
	for first := true; ; first = false {
		ch, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("backup stream ended without its last chunk")
		}
		if err != nil {
			return err
		}
		if first {
			f.Seq, f.ChainVersion, f.TakenUnixMs = ch.Seq, ch.ChainVersion, ch.TakenUnixMs
		}
		for _, r := range ch.Records {
			if err := fw.Write(Record{NS: r.Ns, Key: r.Key, Value: r.Value, ExpiryMs: r.ExpiryMs}); err != nil {
				return err
			}
		}
		b.inFlight.Add(fw.Bytes() - shown)
		shown = fw.Bytes()
		b.report()
		if ch.Last {
			return nil
		}
	}
}

// done counts a finished file.
func (b *backupRun) done(f FileEntry) {
	b.mu.Lock()
	b.prog.PartsDone++
	b.prog.Records += f.Records
	b.prog.Bytes += f.Bytes
	b.mu.Unlock()
	b.report()
}

func (b *backupRun) report() {
	if b.opts.Progress == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	pr := b.prog
	pr.Parts = b.parts
	pr.Bytes += b.inFlight.Load()
	b.opts.Progress(pr)
}

// ringSource is the cluster's ring as last read from etcd.
type ringSource struct {
	cli     *clientv3.Client
	cluster string
	mu      sync.Mutex // guards ring
	ring    *ringmeta.Ring
}

func (rs *ringSource) refresh(ctx context.Context) (*ringmeta.Ring, error) {
	r, _, _, err := ctlstate.Load(ctx, rs.cli, rs.cluster)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: %q", opclient.ErrNoCluster, rs.cluster)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.ring == nil || r.Epoch >= rs.ring.Epoch {
		rs.ring = r
	}
	return rs.ring, nil
}

func (rs *ringSource) current() *ringmeta.Ring {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.ring
}

// connCache keeps one Admin connection per server address.
type connCache struct {
	dial    opclient.AdminDialer
	mu      sync.Mutex // guards the maps
	cls     map[string]kvpb.AdminClient
	closers []io.Closer
}

func newConnCache(dial opclient.AdminDialer) *connCache {
	return &connCache{dial: dial, cls: map[string]kvpb.AdminClient{}}
}

func (c *connCache) get(addr string) (kvpb.AdminClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ac, ok := c.cls[addr]; ok {
		return ac, nil
	}
	ac, cl, err := c.dial(addr)
	if err != nil {
		return nil, err
	}
	c.cls[addr] = ac
	c.closers = append(c.closers, cl)
	return ac, nil
}

func (c *connCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.closers {
		_ = cl.Close()
	}
}

func backoff(try int) time.Duration {
	return min(time.Duration(try)*50*time.Millisecond, maxBackoff)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
