package kvserver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/scancursor"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// scanned is one page as a test sees it.
type scanned struct {
	part  int
	items []*kvpb.ScanItem
}

// scanAll walks every partition from cursor "" with token, sending each
// page to the tail of the cursor's partition and retrying refusals.
func (c *tcluster) scanAll(t *testing.T, token, prefix string, limit uint32, keysOnly bool) []scanned {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var pages []scanned
	cursor := ""
	for {
		cur, err := scancursor.Decode(cursor)
		require.NoError(t, err)
		var resp *kvpb.ScanResponse
		testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
			r := c.curRing()
			ch := r.Chains[cur.Part]
			h := &kvpb.RequestHeader{Token: token, Epoch: r.Epoch, ChainVersion: ch.Version}
			resp, err = c.kv(ch.Tail()).Scan(ctx, &kvpb.ScanRequest{Header: h, Prefix: []byte(prefix), Cursor: cursor, Limit: limit, KeysOnly: keysOnly})
			require.NoError(t, err)
			return resp.Status == kvpb.Status_SUCCESS
		}, "scan page at %q", cursor)
		pages = append(pages, scanned{part: cur.Part, items: resp.Items})
		if resp.Cursor == "" {
			return pages
		}
		cursor = resp.Cursor
	}
}

// keysOf checks that pages hold each key once, in order within each
// partition, and returns key -> value.
func keysOf(t *testing.T, pages []scanned) map[string]string {
	t.Helper()
	got := map[string]string{}
	last := map[int]string{}
	for _, pg := range pages {
		for _, it := range pg.items {
			k := string(it.Key)
			_, dup := got[k]
			require.False(t, dup, "key %q returned twice", k)
			require.Equal(t, pg.part, partOf(k), "key %q in the page of partition %d", k, pg.part)
			require.Greater(t, k, last[pg.part], "partition %d out of order", pg.part)
			last[pg.part] = k
			got[k] = string(it.Value)
		}
	}
	return got
}

func TestScanPages(t *testing.T) {
	c := newClusterWith(t, 3, func(cfg *config.KVServer) { cfg.ScanMaxPageBytes = 1024 }, grpc.WithTransportCredentials(insecure.NewCredentials()))
	r := c.publishInitial("s1", "s2", "s3")
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")
	w := c.client()
	want := map[string]string{}
	for i := range 120 {
		k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i)
		if i%10 == 0 {
			k, v = fmt.Sprintf("big%03d", i), strings.Repeat("x", 400)
		}
		w.mustPut(t, k, v)
		want[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := w.putH(ctx, w.header(), "short-lived", "v", 1)
	require.NoError(t, err)
	time.Sleep(3 * maxClockSkew) // expired on every clock

	t.Run("every key once, small pages", func(t *testing.T) {
		require.Equal(t, want, keysOf(t, c.scanAll(t, "", "", 3, false)))
	})
	t.Run("pages are bounded by bytes", func(t *testing.T) {
		for _, pg := range c.scanAll(t, "", "", 0, false) {
			size := 0
			for _, it := range pg.items {
				size += len(it.Key) + len(it.Value)
			}
			require.True(t, size <= 1024 || len(pg.items) == 1, "page of %d bytes, %d keys", size, len(pg.items))
		}
	})
	t.Run("prefix and keys only", func(t *testing.T) {
		got := keysOf(t, c.scanAll(t, "", "big", 2, true))
		require.Len(t, got, 12)
		for k, v := range got {
			require.True(t, strings.HasPrefix(k, "big"), k)
			require.Empty(t, v)
		}
	})
	t.Run("only the tail answers", func(t *testing.T) {
		resp, err := c.kv("s1").Scan(ctx, &kvpb.ScanRequest{Header: &kvpb.RequestHeader{}})
		require.NoError(t, err)
		require.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status)
		resp, err = c.kv("s3").Scan(ctx, &kvpb.ScanRequest{Header: &kvpb.RequestHeader{ChainVersion: 9}})
		require.NoError(t, err)
		require.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status, "another chain version")
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, rq := range []*kvpb.ScanRequest{
			{Cursor: "not a cursor"},
			{Cursor: scancursor.Encode(scancursor.Cursor{Part: testPartitions})},
			{Cursor: scancursor.Encode(scancursor.Cursor{Part: 1, After: make([]byte, 65)})},
			{Prefix: make([]byte, 65)},
		} {
			_, err := c.kv("s3").Scan(ctx, rq)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v: %v", rq, err)
		}
	})
}

func TestScanNamespaces(t *testing.T) {
	c := newAuthCluster(t, nil)
	alice, err := c.login(t, "s1", "alice", "alice-pw")
	require.NoError(t, err)
	bob, err := c.login(t, "s1", "bob", "bob-pw")
	require.NoError(t, err)
	for i := range 20 {
		_, err := c.kvAs(t, alice, fmt.Sprint("a", i), []byte("alice's"), false)
		require.NoError(t, err)
	}
	_, err = c.kvAs(t, bob, "b", []byte("bob's"), false)
	require.NoError(t, err)
	// The test cluster has one chain, s1-s2-s3, for every partition.
	scan := func(token, prefix string) map[string]string {
		got := map[string]string{}
		cursor := ""
		for {
			resp, err := c.kv("s3").Scan(context.Background(), &kvpb.ScanRequest{
				Header: &kvpb.RequestHeader{Token: token}, Prefix: []byte(prefix), Cursor: cursor, Limit: 4})
			require.NoError(t, err)
			require.Equal(t, kvpb.Status_SUCCESS, resp.Status, resp.Message)
			for _, it := range resp.Items {
				got[string(it.Key)] = string(it.Value)
			}
			if cursor = resp.Cursor; cursor == "" {
				return got
			}
		}
	}
	a := scan(alice, "")
	require.Len(t, a, 20)
	for k, v := range a {
		require.Equal(t, "alice's", v, k)
	}
	require.Equal(t, map[string]string{"b": "bob's"}, scan(bob, ""))
	require.Empty(t, scan(bob, "a"), "a prefix stays in the caller's namespace")
	_, err = c.kv("s3").Scan(context.Background(), &kvpb.ScanRequest{Header: &kvpb.RequestHeader{}})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = c.kv("s3").Scan(context.Background(), &kvpb.ScanRequest{Header: &kvpb.RequestHeader{Token: bob, Namespace: "alice"}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a namespace of the caller's choosing")
}

// TestScanMergePage: keys read one by one join the page in order, and a
// page cut again at its bound resumes right after its last key.
func TestScanMergePage(t *testing.T) {
	item := func(k string) *kvpb.ScanItem { return &kvpb.ScanItem{Key: []byte(k), Value: []byte("v")} }
	rq := scanReq{limit: 3, maxBytes: 1 << 20}
	pg := scanPage{items: []*kvpb.ScanItem{item("a"), item("c")}, last: []byte("e"), more: true}
	got := mergePage(rq, pg, []*kvpb.ScanItem{item("b"), item("d")})
	require.Len(t, got.items, 3)
	require.Equal(t, "c", string(got.last))
	require.True(t, got.more)
	got = mergePage(scanReq{limit: 5, maxBytes: 1 << 20}, pg, []*kvpb.ScanItem{item("b")})
	require.Len(t, got.items, 3)
	require.Equal(t, "e", string(got.last), "uncut: as far as the page got")
	got = mergePage(scanReq{limit: 5, maxBytes: 4}, pg, []*kvpb.ScanItem{item("b")})
	require.Len(t, got.items, 2, "byte bound")
	require.Equal(t, "b", string(got.last))
}
