package kvserver

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/scancursor"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

const opScan = "scan"

func (k *kvService) Scan(ctx context.Context, r *kvpb.ScanRequest) (*kvpb.ScanResponse, error) {
	defer k.s.metrics.observe(opScan, time.Now())
	resp, err := k.s.scan(ctx, r)
	if err == nil {
		_, _ = k.s.metrics.result(opScan, &kvpb.Response{Status: resp.Status}, nil)
	} else {
		_, err = k.s.metrics.result(opScan, nil, toStatus(err))
	}
	return resp, err
}

// scan serves one page of the caller's keys in the cursor's partition
// (DESIGN §7), where a read of them would be served: at the partition's
// tail, at the chain version the client routed by.
func (s *Server) scan(ctx context.Context, r *kvpb.ScanRequest) (*kvpb.ScanResponse, error) {
	ns, err := s.caller(ctx, r.Header)
	if err != nil {
		return nil, err
	}
	cur, err := scancursor.Decode(r.Cursor)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadScan, err)
	}
	ring, resp := s.serving()
	if resp != nil {
		return scanRefused(resp), nil
	}
	if err := checkScan(ring, cur, r.Prefix); err != nil {
		return nil, err
	}
	rt, resp := s.locatePart(ring, r.Header, cur.Part, false)
	if resp != nil {
		return scanRefused(resp), nil
	}
	limit := s.cfg.ScanMaxPageKeys
	if r.Limit > 0 && int(r.Limit) < limit {
		limit = int(r.Limit)
	}
	rq := scanReq{ScanReq: chainsm.ScanReq{Ver: rt.chain.Version, NS: ns, Prefix: r.Prefix},
		after: cur.After, limit: limit, maxBytes: s.cfg.ScanMaxPageBytes, keysOnly: r.KeysOnly}
	pg, err := s.core.scanPage(rt.partition, rq)
	if resp := readRefused(rt, err); resp != nil {
		return scanRefused(resp), nil
	}
	if err != nil {
		return nil, err
	}
	return &kvpb.ScanResponse{Status: kvpb.Status_SUCCESS, Items: pg.items, Epoch: ring.Epoch,
		Cursor: nextCursor(cur.Part, len(ring.Chains), pg)}, nil
}

// checkScan refuses what no server of this cluster could answer.
func checkScan(ring *currentRing, cur scancursor.Cursor, prefix []byte) error {
	switch max := ring.Limits.MaxKeyBytes; {
	case cur.Part >= len(ring.Chains):
		return fmt.Errorf("%w: cursor names partition %d, the cluster has %d", ErrBadScan, cur.Part, len(ring.Chains))
	case len(cur.After) > max:
		return fmt.Errorf("%w: cursor key of %d bytes, limit is %d", ErrBadScan, len(cur.After), max)
	case len(prefix) > max:
		return fmt.Errorf("%w: prefix of %d bytes, limit is %d", ErrBadScan, len(prefix), max)
	}
	return nil
}

func scanRefused(r *kvpb.Response) *kvpb.ScanResponse {
	return &kvpb.ScanResponse{Status: r.Status, Epoch: r.Epoch, Message: r.Message}
}

// nextCursor resumes after pg: in partition p after its last key when the
// page was cut, else at the next partition, else nowhere (the scan is done).
func nextCursor(p, partitions int, pg scanPage) string {
	switch {
	case pg.more:
		return scancursor.Encode(scancursor.Cursor{Part: p, After: pg.last})
	case p+1 < partitions:
		return scancursor.Encode(scancursor.Cursor{Part: p + 1})
	}
	return ""
}

// scanReq is one page to read.
type scanReq struct {
	chainsm.ScanReq
	after    []byte // resume strictly after this key; nil: from the first
	limit    int    // keys at most
	maxBytes int    // key and value bytes at most, but at least one key
	keysOnly bool
}

// scanPage is what a page holds: its live keys in order, and how far it
// got. Every key in (after, last] was considered, returned or not; more
// says keys after last are left.
type scanPage struct {
	items []*kvpb.ScanItem
	bytes int
	last  []byte
	more  bool
}

// add appends an item unless the page is full; false means it is (and
// the item is not in it).
func (pg *scanPage) add(rq scanReq, key, val []byte) bool {
	size := len(key) + len(val)
	if len(pg.items) >= rq.limit || len(pg.items) > 0 && pg.bytes+size > rq.maxBytes {
		pg.more = true
		return false
	}
	pg.items = append(pg.items, &kvpb.ScanItem{Key: slices.Clone(key), Value: slices.Clone(val)})
	pg.bytes += size
	pg.last = pg.items[len(pg.items)-1].Key
	return true
}

// scanPage reads one page of partition p. The node decides, under mu,
// whether this member may serve it and which keys have a write in flight;
// a pebble snapshot taken at that same moment holds, for every other key,
// its committed value. The page is read from the snapshot outside mu, so
// writes go on meanwhile; the keys in flight are then read one by one as
// reads (waiting for their write to commit), so no value above the commit
// point is returned.
func (c *core) scanPage(p int, rq scanReq) (scanPage, error) {
	c.mu.Lock()
	inFlight, err := c.node.Scan(c.now(), p, rq.ScanReq)
	var snap *storage.Snapshot
	if err == nil {
		snap = c.s.store.NewSnapshot()
	}
	c.mu.Unlock()
	if err != nil {
		return scanPage{}, err
	}
	pg, err := readSnapshot(snap, p, rq, inFlight, nowMs())
	snap.Close()
	if err != nil {
		return scanPage{}, err
	}
	var extra []*kvpb.ScanItem
	for _, k := range inFlight {
		if bytes.Compare(k, rq.after) <= 0 || pg.more && bytes.Compare(k, pg.last) > 0 {
			continue // not in (after, last]: another page's
		}
		rec, ok, err := c.read(p, chainsm.ReadReq{Ver: rq.Ver, NS: rq.NS, Key: k})
		if err != nil {
			return scanPage{}, err
		}
		if ok {
			extra = append(extra, &kvpb.ScanItem{Key: k, Value: rec.Value})
		}
	}
	if len(extra) == 0 {
		return pg, nil
	}
	return mergePage(rq, pg, extra), nil
}

// readSnapshot reads a page from snap, leaving out the keys in flight
// (sorted) but counting them as considered. A key near its expiry, which
// another server's clock may judge otherwise, ends the page before it (the
// rule of reads, chainstore.Read); at the head of a page it fails it with
// chainsm.ErrNotReady, and the client retries a moment later.
func readSnapshot(snap *storage.Snapshot, p int, rq scanReq, inFlight [][]byte, now int64) (scanPage, error) {
	var pg scanPage
	var last []byte
	err := snap.ScanKeys(p, rq.NS, rq.Prefix, rq.after, func(key []byte, r storage.Record) (bool, error) {
		if _, found := slices.BinarySearchFunc(inFlight, key, bytes.Compare); found {
			last = append(last[:0], key...)
			return true, nil
		}
		live, expired := chainsm.ExpiryVerdict(now, r.ExpiryMs, maxClockSkew.Milliseconds())
		switch {
		case expired:
			last = append(last[:0], key...)
			return true, nil
		case !live && len(pg.items) == 0:
			return false, fmt.Errorf("%w: key at its expiry", chainsm.ErrNotReady)
		case !live:
			pg.more = true
			return false, nil
		}
		val := r.Value
		if rq.keysOnly {
			val = nil
		}
		if !pg.add(rq, key, val) {
			return false, nil
		}
		last = append(last[:0], key...)
		return true, nil
	})
	pg.last = last
	return pg, err
}

// mergePage puts the keys read one by one into the page, in order, and
// cuts it again at its bounds: the keys after the cut are the next page's.
func mergePage(rq scanReq, pg scanPage, extra []*kvpb.ScanItem) scanPage {
	all := append(pg.items, extra...)
	sort.Slice(all, func(i, j int) bool { return bytes.Compare(all[i].Key, all[j].Key) < 0 })
	var out scanPage
	for _, it := range all {
		val := it.Value
		if rq.keysOnly {
			val = nil
		}
		if !out.add(rq, it.Key, val) {
			return out // cut at its last key
		}
	}
	out.last, out.more = pg.last, pg.more
	return out
}
