package kvserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// errChainChanged fails a waiting write whose chain changed before it
// committed; its outcome is unknown to this server, so the client retries
// with the same request id at the new head.
var errChainChanged = errors.New("kvserver: chain changed before the write committed; retry")

// write runs one client write at the head of its partition (DESIGN §4): the
// chain protocol sequences it, replicates it and answers once it is synced
// on every member of the chain.
func (s *Server) write(ctx context.Context, rt route, h *kvpb.RequestHeader, op storage.Op) (*kvpb.Response, error) {
	a, err := s.core.propose(ctx, rt.partition, proposal(rt, h, op))
	return writeAnswer(rt, h, op, a, err)
}

// proposal is the chain's proposal of client write op.
func proposal(rt route, h *kvpb.RequestHeader, op storage.Op) chainsm.Proposal {
	id := chainsm.ReqID{Client: scopedClientID(op.NS, h.GetClientId()), Seq: h.GetSeq()}
	if id.Client == 0 {
		id = chainsm.ReqID{} // no id: not deduplicated
	}
	return chainsm.Proposal{Ver: rt.chain.Version, ID: id, Ops: []storage.Op{op}, WallMs: nowMs()}
}

// writeAnswer is the client's answer to write op, which the node answered
// with a, or refused or failed with err (a.Err mapped).
func writeAnswer(rt route, h *kvpb.RequestHeader, op storage.Op, a chainsm.Answer, err error) (*kvpb.Response, error) {
	switch {
	case errors.Is(err, chainsm.ErrNotResponsible):
		return notResponsible(rt.ring, "partition is changing chains here"), nil
	case errors.Is(err, chainsm.ErrIDReused):
		return nil, fmt.Errorf("%w (client %d, request %d)", ErrRequestIDReused, h.GetClientId(), h.GetSeq())
	case errors.Is(err, errAtExpiry):
		return &kvpb.Response{Status: kvpb.Status_SERVER_NOT_READY, Epoch: rt.ring.Epoch, Message: "key at its expiry"}, nil
	case errors.Is(err, chainsm.ErrNotReady):
		return &kvpb.Response{Status: kvpb.Status_SERVER_NOT_READY, Epoch: rt.ring.Epoch, Message: "partition is syncing"}, nil
	case err != nil:
		return nil, err
	}
	return writeResponse(a, op, rt.ring.Epoch), nil
}

// propose hands a write to the node and waits for its answer. Writes
// arriving together are proposed together, with the other inputs queued
// for the node (see core.do); a caller whose write another proposed only
// waits.
func (c *core) propose(ctx context.Context, p int, pr chainsm.Proposal) (chainsm.Answer, error) {
	w := &waiter{ch: make(chan chainsm.Answer, 1)}
	c.run(input{qp: queuedProposal{p: p, pr: pr, w: w, at: time.Now()}})

	start := time.Now()
	select {
	case a := <-w.ch:
		if a.Err == nil {
			c.s.metrics.commit.Observe(time.Since(start).Seconds())
		}
		return a, mapAnswerErr(a.Err)
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waits, w.tok)
		c.mu.Unlock()
		return chainsm.Answer{}, notCommitted(ctx.Err())
	}
}

// notCommitted fails a write whose caller stopped waiting (err).
func notCommitted(err error) error {
	return fmt.Errorf("kvserver: write not yet committed: %w", err)
}

// queuedProposal is a write waiting for its turn at the node.
type queuedProposal struct {
	p  int
	pr chainsm.Proposal
	w  *waiter
	at time.Time // queued
}

// proposeLocked registers a queued write and proposes it; a refusal
// answers it at once.
func (c *core) proposeLocked(now chainsm.Mono, qp *queuedProposal) {
	c.s.metrics.stage.queue.Observe(time.Since(qp.at).Seconds())
	c.token++
	tok := c.token
	qp.w.tok = tok
	c.waits[tok] = qp.w
	qp.pr.Token = tok
	err := errAtExpiry
	if len(qp.pr.Ops) != 1 || !c.atExpiry(qp.p, qp.pr.Ops[0], qp.pr.WallMs) {
		err = c.node.Propose(now, qp.p, qp.pr)
	}
	if err != nil {
		delete(c.waits, tok)
		a := chainsm.Answer{Token: tok, Err: err}
		if qp.w.done != nil {
			c.early = append(c.early, answered{qp.w, a})
			return
		}
		qp.w.ch <- a
	}
}

func mapAnswerErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, chainsm.ErrChainChanged):
		return errChainChanged
	case errors.Is(err, chainsm.ErrStopped):
		return ErrStopped
	}
	return err
}

// expire deletes an expired key through the chain at the head, unless a put
// made it live again since the sweep saw it. Nobody waits for the answer.
func (c *core) expire(p int, op storage.Op) error { return c.sweepDelete(p, op, true) }

// erase deletes a key of a removed user through the chain at the head.
// Nobody waits for the answer.
func (c *core) erase(p int, op storage.Op) error { return c.sweepDelete(p, op, false) }

// sweepDelete proposes a sweeper's delete; with onlyExpired, only if the
// key is still expired.
func (c *core) sweepDelete(p int, op storage.Op, onlyExpired bool) error {
	c.mu.Lock()
	defer func() {
		out := c.drainLocked()
		c.mu.Unlock()
		c.dispatch(out)
	}()
	if onlyExpired {
		if _, live, err := c.s.store.Get(p, op.NS, op.Key, nowMs()); err != nil || live {
			return err
		}
	}
	err := c.node.Propose(c.now(), p, chainsm.Proposal{Ops: []storage.Op{op}, WallMs: nowMs()})
	if errors.Is(err, chainsm.ErrNotResponsible) || errors.Is(err, chainsm.ErrNotReady) {
		return nil // no longer the head here: the new head sweeps
	}
	return err
}

// failWrites fails every write waiting here (Stop).
func (s *Server) failWrites() {
	if s.core != nil {
		s.core.stop()
	}
}
