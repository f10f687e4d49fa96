package kvclient

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/scancursor"
	"github.com/stretchr/testify/require"
)

// scanServer is memServer with Scan: pages of at most two keys, and a
// refusal (SERVER_NOT_READY) before every other page, which the client
// retries.
type scanServer struct {
	*memServer
	calls atomic.Int64
}

func (s *scanServer) Scan(_ context.Context, r *kvpb.ScanRequest) (*kvpb.ScanResponse, error) {
	if s.calls.Add(1)%2 == 1 {
		return &kvpb.ScanResponse{Status: kvpb.Status_SERVER_NOT_READY, Epoch: 1}, nil
	}
	cur, err := scancursor.Decode(r.Cursor)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.data {
		if strings.HasPrefix(k, string(r.Prefix)) && k > string(cur.After) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	resp := &kvpb.ScanResponse{Status: kvpb.Status_SUCCESS, Epoch: 1}
	n := min(len(keys), 2, int(r.Limit))
	for _, k := range keys[:n] {
		it := &kvpb.ScanItem{Key: []byte(k)}
		if !r.KeysOnly {
			it.Value = s.data[k]
		}
		resp.Items = append(resp.Items, it)
	}
	if n < len(keys) {
		resp.Cursor = scancursor.Encode(scancursor.Cursor{After: []byte(keys[n-1])})
	}
	return resp, nil
}

func TestScanWalksPages(t *testing.T) {
	ms := &scanServer{memServer: &memServer{data: map[string][]byte{}, breakc: make(chan struct{})}}
	lis := listen(t)
	ms.addr = lis.Addr().String()
	serveKV(t, lis, ms)
	c := newMemClient(t, ms.memServer)
	ctx := context.Background()
	for i := range 7 {
		_, err := c.Put(ctx, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)))
		require.NoError(t, err)
	}
	_, err := c.Put(ctx, "other", []byte("x"))
	require.NoError(t, err)

	got := map[string]string{}
	cursor, pages := "", 0
	for {
		var kvs []KV
		kvs, cursor, err = c.Scan(ctx, "k", cursor, 3)
		require.NoError(t, err)
		pages++
		for _, kv := range kvs {
			_, dup := got[kv.Key]
			require.False(t, dup, kv.Key)
			got[kv.Key] = string(kv.Value)
		}
		if cursor == "" {
			break
		}
	}
	require.Len(t, got, 7)
	require.Equal(t, "v3", got["k3"])
	require.Equal(t, 4, pages, "pages of two keys")

	kvs, cursor, err := c.Scan(ctx, "", "", 1, WithKeysOnly())
	require.NoError(t, err)
	require.Len(t, kvs, 1)
	require.Nil(t, kvs[0].Value)
	require.NotEmpty(t, cursor)

	for _, bad := range []string{"garbage!", scancursor.Encode(scancursor.Cursor{Part: 1})} {
		_, _, err = c.Scan(ctx, "", bad, 0)
		require.ErrorIs(t, err, ErrBadCursor, bad)
	}
	_, _, err = c.Scan(ctx, strings.Repeat("p", 65), "", 0)
	require.ErrorIs(t, err, ErrKeyTooLarge)
}
