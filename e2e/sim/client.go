package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/e2e/sim/etcdmodel"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

type opKind int

// The kinds match framework.OpKind's.
const (
	opGet opKind = iota
	opPut
	opDelete
	opCAS
	opIncr
)

// request is a client call on the wire.
type request struct {
	attempt   uint64
	kind      opKind
	part      int
	key       string
	value     string
	ttlMs     int64
	id        chainsm.ReqID
	ver       uint64
	anyMember bool
	cas       casReq
}

// casReq is the rest of a cas or an incr.
type casReq struct {
	expect       string
	expectAbsent bool
	delta        int64
}

// ops is the request's write; the head turns a TTL into an absolute expiry
// by its wall clock.
func (rq request) ops(wallMs int64) []storage.Op {
	o := storage.Op{Kind: storage.OpPut, Key: []byte(rq.key), Value: []byte(rq.value)}
	if rq.ttlMs > 0 {
		o.ExpiryMs = wallMs + rq.ttlMs
	}
	switch rq.kind {
	case opDelete:
		o = storage.Op{Kind: storage.OpDelete, Key: []byte(rq.key)}
	case opIncr:
		o = storage.Op{Kind: storage.OpIncr, Key: []byte(rq.key), Delta: rq.cas.delta}
	case opCAS:
		o.Cond = storage.Cond{Kind: storage.CondValue, Value: []byte(rq.cas.expect)}
		if rq.cas.expectAbsent {
			o.Cond = storage.Cond{Kind: storage.CondAbsent}
		}
	}
	return []storage.Op{o}
}

type reply struct {
	attempt uint64
	status  kvpb.Status
	err     error
	value   string
	found   bool
	version uint64
}

// client runs kvclient's routing and retry rules: route by a cached ring
// (writes to the head, reads to the tail or any member), refresh the ring
// on a refusal or a timeout, retry a write with the same request id until
// its deadline, and report a write whose outcome it cannot know as such.
type client struct {
	s       *Sim
	name    string
	rng     *rand.Rand
	logical int // porcupine's client id; a fresh one after an unknown outcome
	cid     uint64
	seq     uint64
	puts    uint64 // puts issued, never reset
	ring    *ringmeta.Ring
	op      *pendingOp
	attempt uint64
	active  bool
	keys    []string
	ttlKeys []string // keys written with a TTL
	// counters take gets, incrs and cases; seen is the value this client
	// last read or wrote there, what its next cas expects.
	counters []string
	seen     map[string]*string
	// prefer, when a member of the chain, serves this client's any-member
	// reads (a client reading from its nearest replica).
	prefer string
}

type pendingOp struct {
	kind      opKind
	key       string
	value     string
	ttlMs     int64
	id        chainsm.ReqID
	start     int64
	deadline  int64
	maybe     bool  // a write attempt may have been sequenced
	sent      int64 // when the first such attempt was sent
	anyMember bool
	cas       casReq
	onDone    func(framework.Op)
}

// run issues operations one after another until stop.
func (c *client) run(stop int64) {
	if c.s.now >= stop || !c.active {
		return
	}
	if len(c.counters) > 0 && c.rng.IntN(4) == 0 {
		c.beginCounter(func(framework.Op) {
			c.s.after(expDur(c.rng, 20_000_000), func() { c.run(stop) })
		})
		return
	}
	kind := opKind(c.rng.IntN(3))
	key := c.keys[c.rng.IntN(len(c.keys))]
	var ttl int64
	if len(c.ttlKeys) > 0 && c.rng.IntN(5) == 0 {
		// A key with a TTL: puts of 50-500 ms and reads, no deletes.
		kind, key = opKind(c.rng.IntN(2)), c.ttlKeys[c.rng.IntN(len(c.ttlKeys))]
		ttl = 50 + c.rng.Int64N(451)
	}
	c.begin(kind, key, ttl, c.rng.IntN(2) == 0, func(framework.Op) {
		c.s.after(expDur(c.rng, 20_000_000), func() { c.run(stop) })
	})
}

// begin starts one operation; a put with ttlMs > 0 expires that long
// after the head sequenced it.
func (c *client) begin(kind opKind, key string, ttlMs int64, anyMember bool, done func(framework.Op)) {
	c.seq++
	op := &pendingOp{kind: kind, key: key, start: c.s.now, deadline: c.s.now + c.s.opt.OpDeadline,
		id: chainsm.ReqID{Client: c.cid, Seq: c.seq}, anyMember: anyMember, onDone: done}
	if kind == opPut {
		op.ttlMs = ttlMs
	}
	if kind == opPut {
		c.puts++
		op.value = fmt.Sprintf("%s-%d", c.name, c.puts) // unique: names the put
	}
	c.op = op
	c.try()
}

// beginCounter starts a get, an incr or a cas on a counter; a cas expects
// the value this client last saw there (absent if it saw none).
func (c *client) beginCounter(done func(framework.Op)) {
	key := c.counters[c.rng.IntN(len(c.counters))]
	kind := []opKind{opGet, opIncr, opCAS}[c.rng.IntN(3)]
	c.seq++
	op := &pendingOp{kind: kind, key: key, start: c.s.now, deadline: c.s.now + c.s.opt.OpDeadline,
		id: chainsm.ReqID{Client: c.cid, Seq: c.seq}, onDone: done}
	switch kind {
	case opIncr:
		op.cas.delta = 1 + c.rng.Int64N(3)
	case opCAS:
		op.value = fmt.Sprint(c.rng.IntN(100))
		op.cas.expectAbsent = true
		if v := c.seen[key]; v != nil {
			op.cas = casReq{expect: *v}
		}
	}
	c.op = op
	c.try()
}

// try sends one attempt of the current operation.
func (c *client) try() {
	op := c.op
	if c.s.now >= op.deadline {
		c.finish(nil)
		return
	}
	if op.maybe && !canaryRetryWindow && c.s.now-op.sent >= int64(c.s.opt.WriteRetryWindow) {
		c.finish(nil) // the servers may forget the request id: Unknown
		return
	}
	if c.ring == nil {
		c.refresh(c.try)
		return
	}
	p := c.ring.PartitionOf(nil, []byte(op.key))
	ch := c.ring.Chain(p)
	to := ch.Head()
	if op.kind == opGet {
		to = ch.Tail()
		if op.anyMember && len(ch.Members) > 0 {
			to = ch.Members[c.rng.IntN(len(ch.Members))]
			if ch.Index(c.prefer) >= 0 {
				to = c.prefer
			}
		}
	}
	c.attempt++
	att := c.attempt
	rq := request{attempt: att, kind: op.kind, part: p, key: op.key, value: op.value, ttlMs: op.ttlMs, id: op.id, ver: ch.Version, anyMember: op.anyMember, cas: op.cas}
	if op.kind != opGet {
		if !op.maybe {
			op.sent = c.s.now
		}
		op.maybe = true // until a definite refusal says otherwise... only for this attempt
	}
	c.s.request(c, to, rq)
	c.s.after(c.s.opt.AttemptTimeout, func() {
		if c.op == op && c.attempt == att {
			c.attempt++ // a late answer is ignored
			c.refresh(c.try)
		}
	})
}

// onReply handles a server's answer to the current attempt.
func (c *client) onReply(rep reply) {
	if c.op == nil || rep.attempt != c.attempt {
		return
	}
	c.attempt++
	op := c.op
	if c.s.opt.Trace != nil && rep.err != nil {
		fmt.Fprintf(c.s.opt.Trace, "%s reply %s %s(%s): %v\n", time.Duration(c.s.now), c.name, framework.OpKind(op.kind), op.key, rep.err)
	}
	switch {
	case rep.err == nil && rep.status != kvpb.Status_SERVER_NOT_RESPONSIBLE:
		c.finish(&rep)
	case errors.Is(rep.err, chainsm.ErrNotResponsible), rep.status == kvpb.Status_SERVER_NOT_RESPONSIBLE:
		c.s.after(5_000_000, func() { c.refresh(c.try) })
	case errors.Is(rep.err, chainsm.ErrReadFromTail):
		op.anyMember = false
		c.try()
	default: // not ready, chain changed, stopped
		c.s.after(20_000_000, func() { c.refresh(c.try) })
	}
}

// finish records the operation: OK with the answer, else Unknown (a
// write that may have been applied) or Failed.
func (c *client) finish(rep *reply) {
	op := c.op
	c.op = nil
	h := framework.Op{Client: c.logical, Kind: framework.OpKind(op.kind), Key: op.key, Value: op.value,
		Expect: op.cas.expect, ExpectAbsent: op.cas.expectAbsent, Delta: op.cas.delta,
		Start: time.Unix(0, op.start), End: time.Unix(0, c.s.now)}
	switch {
	case rep != nil:
		h.Outcome = framework.OK
		h.Version = rep.version
		switch op.kind {
		case opGet:
			h.Found, h.Value = rep.found, rep.value
		case opPut:
			h.Found = rep.status == kvpb.Status_UPDATE
		case opCAS:
			h.Held = rep.status != kvpb.Status_CONDITION_FAILED
		case opIncr:
			h.Value = rep.value
		default:
			h.Found = rep.status == kvpb.Status_SUCCESS
		}
		c.saw(h)
	case op.kind != opGet && op.maybe:
		h.Outcome = framework.Unknown
		c.logical = c.s.newLogical()
		c.cid = c.s.rootRng.Uint64()
		c.seq = 0
	default:
		h.Outcome = framework.Failed
	}
	fmt.Fprintf(c.s.hash, "%d op %s %d %s %v %d\n", c.s.now, c.name, h.Kind, h.Key, h.Found, h.Outcome)
	if c.s.opt.Trace != nil {
		fmt.Fprintf(c.s.opt.Trace, "%s op %s %s(%s) %q found=%v %s (from %s)\n", time.Duration(c.s.now), c.name, h.Kind, h.Key, h.Value, h.Found, h.Outcome, time.Duration(op.start))
	}
	c.s.record(h)
	op.onDone(h)
}

// saw remembers a counter's value a finished operation learnt, for the
// next cas there.
func (c *client) saw(h framework.Op) {
	if !slices.Contains(c.counters, h.Key) {
		return
	}
	if c.seen == nil {
		c.seen = map[string]*string{}
	}
	switch {
	case h.Kind == framework.OpGet && !h.Found, h.Kind == framework.OpCAS && !h.Held:
		delete(c.seen, h.Key)
	default:
		v := h.Value
		c.seen[h.Key] = &v
	}
}

// refresh reads the ring from etcd, then calls next (also when etcd is
// unreachable: the attempt's deadline ends the operation).
func (c *client) refresh(next func()) {
	done := false
	c.s.etcdCall(c.name, func(etcdmodel.Time) any {
		if kv, ok := c.s.etcd.Get(ringKey); ok {
			return kv.Value
		}
		return nil
	}, 0, func(v any) {
		if done {
			return
		}
		done = true
		if b, ok := v.([]byte); ok {
			if r, err := ringmeta.Unmarshal(b); err == nil && (c.ring == nil || r.Epoch > c.ring.Epoch) {
				c.ring = r
			}
		}
		next()
	})
	c.s.after(c.s.opt.AttemptTimeout, func() {
		if !done {
			done = true
			next()
		}
	})
}
