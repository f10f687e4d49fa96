package kvserver

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

const (
	opWatch = "watch"
	// watchBatch bounds the entries looked at per message sent.
	watchBatch = 256
	// watchProgress is how often an idle watch is told the resume point
	// and checked against the ring.
	watchProgress = time.Second
)

// Watch serves one watch of a partition's keys at a member of its chain,
// normally the tail (DESIGN §7):
// the committed writes after the request's seq, then each write as it
// commits, until the client goes, or the ring moves the partition's tail
// elsewhere (the last message's status says so, and where to resume).
func (k *kvService) Watch(r *kvpb.WatchRequest, stream kvpb.KV_WatchServer) error {
	defer k.s.metrics.observe(opWatch, time.Now())
	err := k.s.serveWatch(r, stream)
	_, err = k.s.metrics.result(opWatch, &kvpb.Response{Status: kvpb.Status_SUCCESS}, toStatus(err))
	return err
}

func (s *Server) serveWatch(r *kvpb.WatchRequest, stream kvpb.KV_WatchServer) error {
	ctx := stream.Context()
	ns, err := s.caller(ctx, r.Header)
	if err != nil {
		return err
	}
	ring, resp := s.serving()
	if resp == nil {
		if err := checkWatch(ring, r); err != nil {
			return err
		}
	}
	p := int(r.Partition)
	if resp == nil {
		resp = s.watchMember(ring, r.Header, p)
	}
	if resp != nil {
		return stream.Send(&kvpb.WatchResponse{Status: resp.Status, Message: resp.Message, Epoch: resp.Epoch, Seq: r.AfterSeq})
	}
	wake := s.watch.subscribe(p)
	defer s.watch.unsubscribe(p, wake)
	s.alignWatch(p)
	w := watchFilter{ns: ns, key: r.Key, prefix: r.Prefix}
	next := s.watch.start(p, r.AfterSeq)
	fresh, lagged := r.AfterSeq == 0, false
	tick := time.NewTicker(watchProgress)
	defer tick.Stop()
	sent := next - 1 // the resume point last told
	recheck := false // the ticker fired: check the ring once all is sent
	if !fresh {
		if _, err := s.watch.since(p, next, 0, false); err != nil {
			return err // before the first message: a refusal, not a break
		}
	}
	// The first message tells where the watch starts (a watch from now
	// resumes there if the stream breaks before any write).
	if err := stream.Send(&kvpb.WatchResponse{Seq: sent, Epoch: ring.Epoch}); err != nil {
		return err
	}
	for {
		es, err := s.watch.since(p, next, watchBatch, lagged)
		if fresh && errors.Is(err, ErrWatchCompacted) {
			// A watch from now has nothing to resume: start where the
			// history here starts.
			next, err = s.watch.first(p), nil
			continue
		}
		if err != nil {
			return err
		}
		if len(es) > 0 {
			// The history here covered the watch: from now on, history
			// lost is the watcher's lag. Until then a member that starts
			// its history after the watch's seq (a tail that joined by a
			// snapshot) refuses it as compacted, and the client tries
			// another member.
			lagged, fresh = true, false
			next = es[len(es)-1].Seq + 1
			out := &kvpb.WatchResponse{Seq: next - 1, Epoch: ring.Epoch, Events: w.events(es)}
			if len(out.Events) > 0 || next-1-sent >= watchBatch {
				if err := stream.Send(out); err != nil {
					return err
				}
				sent = next - 1
			}
			continue // more may be waiting
		}
		if !recheck {
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			case <-tick.C:
				// What committed here before the ring moved goes out
				// first: the next member may not keep it.
				recheck = true
			}
			continue
		}
		recheck = false
		cur, resp := s.serving()
		if resp == nil {
			resp = s.watchMember(cur, nil, p)
		}
		if resp != nil {
			return stream.Send(&kvpb.WatchResponse{Status: resp.Status, Message: resp.Message, Epoch: resp.Epoch, Seq: next - 1})
		}
		ring = cur
		if next-1 != sent {
			if err := stream.Send(&kvpb.WatchResponse{Seq: next - 1, Epoch: ring.Epoch}); err != nil {
				return err
			}
			sent = next - 1
		}
	}
}

// alignWatch brings the watch history of p in line with what the node
// committed, under the core's lock so that no commit slips between.
func (s *Server) alignWatch(p int) {
	c := s.core
	c.mu.Lock()
	defer c.mu.Unlock()
	if in, ok := c.node.Info(p); ok {
		s.watch.align(p, in.Committed)
	}
}

// watchMember refuses a watch of partition p unless this server is a full
// member of its chain (at the chain version the client routed by): any
// member commits the same writes in the same order, the tail first, so a
// watch resumes at another member when the tail's history is too short (a
// tail that joined by a snapshot).
func (s *Server) watchMember(cur *currentRing, h *kvpb.RequestHeader, p int) *kvpb.Response {
	ch := cur.Chain(p)
	switch {
	case ch.Index(s.cfg.ID) < 0:
		return notResponsible(cur, fmt.Sprintf("not a member of partition %d", p))
	case h != nil && h.ChainVersion != 0 && h.ChainVersion != ch.Version:
		return notResponsible(cur, fmt.Sprintf("partition %d is at chain version %d, request has %d", p, ch.Version, h.ChainVersion))
	}
	return nil
}

// checkWatch refuses what no server of this cluster could answer.
func checkWatch(ring *currentRing, r *kvpb.WatchRequest) error {
	switch lim := ring.Limits.MaxKeyBytes; {
	case int(r.Partition) >= len(ring.Chains):
		return fmt.Errorf("%w: partition %d, the cluster has %d", ErrBadWatch, r.Partition, len(ring.Chains))
	case len(r.Key) > lim || len(r.Prefix) > lim:
		return tooLarge(ErrKeyTooLarge, max(len(r.Key), len(r.Prefix)), lim)
	case len(r.Key) > 0 && len(r.Prefix) > 0:
		return fmt.Errorf("%w: a key and a prefix", ErrBadWatch)
	}
	return nil
}

// watchFilter picks the events of one watch: the caller's namespace, the
// key or the prefix.
type watchFilter struct {
	ns, key, prefix []byte
}

func (w watchFilter) match(o storage.Op) bool {
	if !bytes.Equal(o.NS, w.ns) {
		return false
	}
	if len(w.key) > 0 {
		return bytes.Equal(o.Key, w.key)
	}
	return bytes.HasPrefix(o.Key, w.prefix)
}

// events converts the matching writes of es.
func (w watchFilter) events(es []*chainsm.Entry) []*kvpb.WatchEvent {
	var out []*kvpb.WatchEvent
	for _, e := range es {
		for _, o := range e.Ops {
			if o.Kind == storage.OpNone || !w.match(o) {
				continue
			}
			ev := &kvpb.WatchEvent{Key: o.Key, Version: e.Seq}
			switch {
			case o.Kind == storage.OpPut:
				ev.Kind, ev.Value, ev.ExpiryUnixMs = kvpb.WatchEvent_PUT, o.Value, o.ExpiryMs
			case e.ID == (chainsm.ReqID{}):
				ev.Kind = kvpb.WatchEvent_EXPIRE // the sweep's delete
			default:
				ev.Kind = kvpb.WatchEvent_DELETE
			}
			out = append(out, ev)
		}
	}
	return out
}
