package kvserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// backupOf streams partition p from server id, trying again while it is
// not ready (its read lease), as ecs backup does.
func (c *tcluster) backupOf(ctx context.Context, id string, p int) (seq uint64, recs []*kvpb.Op, err error) {
	for range 100 {
		if seq, recs, err = c.backupOnce(ctx, id, p); status.Code(err) != codes.Unavailable {
			return seq, recs, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return seq, recs, err
}

func (c *tcluster) backupOnce(ctx context.Context, id string, p int) (seq uint64, recs []*kvpb.Op, err error) {
	stream, err := c.admin(id).Backup(ctx, &kvpb.BackupRequest{Partition: uint32(p)})
	if err != nil {
		return 0, nil, err
	}
	for first := true; ; first = false {
		ch, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return 0, nil, errors.New("no last chunk")
		}
		if err != nil {
			return 0, nil, err
		}
		if first {
			seq = ch.Seq
		}
		recs = append(recs, ch.Records...)
		if ch.Last {
			return seq, recs, nil
		}
	}
}

// TestBackupAtOneSeq: while one writer adds keys to a partition one after
// another, each backup of it holds exactly the first seq keys, with no
// gap: the partition as it stood at that seq, committed.
func TestBackupAtOneSeq(t *testing.T) {
	c := newCluster(t, 3)
	r := c.publishInitial("s1", "s2", "s3")
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")
	const p = 5
	keys := keysIn(p, 400, "seq")
	w := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, k := range keys {
			if _, err := w.put(ctx, k, "v-"+k); err != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	index := map[string]int{}
	for i, k := range keys {
		index[k] = i
	}
	for round := 0; round < 20; round++ {
		seq, recs, err := c.backupOf(ctx, "s3", p)
		require.NoError(t, err)
		require.Len(t, recs, int(seq), "round %d: records at seq %d", round, seq)
		seen := make([]bool, len(recs))
		for _, rec := range recs {
			i, ok := index[string(rec.Key)]
			require.True(t, ok && i < len(recs), "round %d: key %q beyond seq %d", round, rec.Key, seq)
			require.Equal(t, "v-"+string(rec.Key), string(rec.Value))
			seen[i] = true
		}
		require.NotContains(t, seen, false)
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBackupRestore: only the tail backs up and only the head restores;
// restored records keep their namespace and absolute expiry, and records
// of another partition are refused.
func TestBackupRestore(t *testing.T) {
	c := newCluster(t, 3)
	r := c.publishInitial("s1", "s2", "s3")
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const p = 9
	ns := []byte("0123456789abcdef")
	var recs []*kvpb.Op
	for i := 0; len(recs) < 50; i++ {
		k := []byte(fmt.Sprintf("r%d", i))
		if ringmeta.Partition(ringmeta.KeyHash(ns, k), testPartitions) == p {
			recs = append(recs, &kvpb.Op{Ns: ns, Key: k, Value: []byte("val"), ExpiryMs: time.Now().Add(time.Hour).UnixMilli() + int64(i)})
		}
	}
	plain := keysIn(p, 1, "plain")[0]
	recs = append(recs, &kvpb.Op{Key: []byte(plain), Value: []byte("no ttl")})

	resp, err := c.admin("s3").Restore(ctx, &kvpb.RestoreRequest{Partition: p, Records: recs})
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status, "the tail is not the head")
	for range 100 { // until the head is ready, as ecs restore does
		resp, err = c.admin("s1").Restore(ctx, &kvpb.RestoreRequest{Partition: p, Records: recs})
		require.NoError(t, err)
		if resp.Status != kvpb.Status_SERVER_NOT_READY {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Contains(t, []kvpb.Status{kvpb.Status_SUCCESS, kvpb.Status_UPDATE}, resp.Status, resp.Message)

	other := &kvpb.Op{Key: []byte(keysIn(p+1, 1, "other")[0]), Value: []byte("x")}
	_, err = c.admin("s1").Restore(ctx, &kvpb.RestoreRequest{Partition: p, Records: []*kvpb.Op{other}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	_, _, err = c.backupOf(ctx, "s1", p)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "the head is not the tail: %v", err)
	_, got, err := c.backupOf(ctx, "s3", p)
	require.NoError(t, err)
	want := map[string]*kvpb.Op{}
	for _, r := range recs {
		want[string(r.Ns)+"/"+string(r.Key)] = r
	}
	require.Len(t, got, len(want))
	for _, g := range got {
		w, ok := want[string(g.Ns)+"/"+string(g.Key)]
		require.True(t, ok, "%q/%q", g.Ns, g.Key)
		require.Equal(t, string(w.Value), string(g.Value))
		require.Equal(t, w.ExpiryMs, g.ExpiryMs)
	}
	v, ok := c.client().mustGet(t, plain)
	require.True(t, ok)
	require.Equal(t, "no ttl", v)
	c.waitConverged([]string{"s1", "s2", "s3"}, []int{p}, 5*time.Second)
}
