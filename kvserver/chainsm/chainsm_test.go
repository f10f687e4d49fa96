package chainsm

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// net is a tiny synchronous cluster: every node's Ready is carried out at
// once (storage as a per-node log of applied seqs, syncs completing when
// the test says), messages delivered in order unless dropped.
type net struct {
	t       *testing.T
	now     Mono
	nodes   map[string]*Node
	applied map[string]map[int]uint64
	syncs   map[string][]uint64
	queue   []Msg
	drop    func(Msg) bool
	hold    map[string]bool // nodes whose syncs do not complete
	answers map[uint64]Answer
	reports map[string][]Report                  // synced and ready reports, per node
	stored  map[string][]StorageOp               // StVersion records, per node
	records map[string]map[string]storage.Record // each node's last applied put of a key, as its cache would hold it
}

func newNet(t *testing.T, ids ...string) *net {
	nt := &net{t: t, nodes: map[string]*Node{}, applied: map[string]map[int]uint64{}, syncs: map[string][]uint64{}, answers: map[uint64]Answer{},
		reports: map[string][]Report{}, stored: map[string][]StorageOp{}, records: map[string]map[string]storage.Record{}}
	for _, id := range ids {
		nt.nodes[id] = New(Config{ID: id, Check: true})
		nt.applied[id] = map[int]uint64{}
		nt.records[id] = map[string]storage.Record{}
	}
	return nt
}

func (nt *net) drain(id string) {
	n := nt.nodes[id]
	for n.HasReady() {
		rd := n.Ready()
		var sts []storage.Outcome
		for _, op := range rd.Storage {
			out := storage.Outcome{Status: kvpb.Status_SUCCESS}
			switch op.Kind {
			case StApply:
				nt.applied[id][op.Part] = op.Entry.Seq
				o := op.Entry.Ops[0]
				if rec, ok := nt.records[id][string(o.Key)]; ok && op.NeedPrior {
					out.Prior = &rec
				}
				for _, o := range op.Entry.Ops {
					switch o.Kind {
					case storage.OpPut:
						nt.records[id][string(o.Key)] = storage.Record{Seq: op.Entry.Seq, Value: o.Value}
					case storage.OpDelete:
						delete(nt.records[id], string(o.Key))
					}
				}
			case StVersion:
				nt.stored[id] = append(nt.stored[id], op)
			}
			if op.NeedStatus || op.NeedPrior {
				sts = append(sts, out)
			}
		}
		n.Advance(sts)
		if rd.Sync != 0 {
			nt.syncs[id] = append(nt.syncs[id], rd.Sync)
		}
		nt.queue = append(nt.queue, rd.Msgs...)
		for _, ss := range rd.Snapshots {
			// The snapshot's records as the sender holds them now (tests
			// use partition 0 only), then its end, in order with the rest.
			nt.records[ss.To] = maps.Clone(nt.records[id])
			nt.queue = append(nt.queue, Msg{Kind: MsgSnapshot, From: id, To: ss.To, Part: ss.Part, Ver: ss.Ver, Seq: ss.Seq, Dedup: ss.Dedup})
		}
		for _, a := range rd.Answers {
			nt.answers[a.Token] = a
		}
		for _, r := range rd.Reports {
			if r.Kind != RepEpoch {
				nt.reports[id] = append(nt.reports[id], r)
			}
		}
	}
	if err := n.Violation(); err != nil {
		nt.t.Fatal(err)
	}
}

// settle delivers messages and completes syncs until nothing moves.
func (nt *net) settle() {
	for i := 0; i < 1000; i++ {
		moved := false
		for _, id := range sortedKeys(nt.nodes) {
			if s := nt.syncs[id]; len(s) > 0 && !nt.hold[id] {
				nt.syncs[id] = nil
				nt.nodes[id].SyncDone(nt.now, s[len(s)-1])
				nt.drain(id)
				moved = true
			}
		}
		q := nt.queue
		nt.queue = nil
		for _, m := range q {
			if nt.drop != nil && nt.drop(m) {
				continue
			}
			if n, ok := nt.nodes[m.To]; ok {
				n.Step(nt.now, m)
				nt.drain(m.To)
				moved = true
			}
		}
		if !moved {
			return
		}
	}
	nt.t.Fatal("no quiescence")
}

func (nt *net) ring(epoch uint64, chains ...ringmeta.Chain) {
	r := &ringmeta.Ring{Epoch: epoch, Partitions: len(chains), Replicas: 3, Chains: chains}
	for _, id := range sortedKeys(nt.nodes) {
		nt.nodes[id].SetRing(nt.now, r)
		nt.nodes[id].EtcdContact(nt.now)
		nt.drain(id)
	}
}

func (nt *net) advance(d time.Duration) {
	nt.now += Mono(d)
	for _, id := range sortedKeys(nt.nodes) {
		nt.nodes[id].Tick(nt.now, int64(nt.now/1e6))
		nt.nodes[id].EtcdContact(nt.now)
		nt.drain(id)
	}
}

// newChainNet is a net of a, b and c with partition 0's chain [a b c],
// past the holdback of its first adoption.
func newChainNet(t *testing.T) *net {
	nt := newNet(t, "a", "b", "c")
	nt.ring(1, ringmeta.Chain{Members: []string{"a", "b", "c"}, Version: 1})
	nt.advance(2 * time.Second)
	nt.settle()
	return nt
}

func put(key string) []storage.Op {
	return []storage.Op{{Kind: storage.OpPut, Key: []byte(key), Value: []byte("v")}}
}

func TestWriteAnsweredOnlyWhenSyncedEverywhere(t *testing.T) {
	nt := newChainNet(t)
	if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 7, ID: ReqID{1, 1}, Ops: put("k")}); err != nil {
		t.Fatal(err)
	}
	nt.drain("a")
	// The entry travels at once: the head syncs in parallel with the rest.
	if len(nt.queue) != 1 || nt.queue[0].Kind != MsgUpdate || len(nt.queue[0].Entries) != 1 {
		t.Fatalf("not forwarded before the head's sync: %v", nt.queue)
	}
	// Synced on the middle and the tail but not on the head: not committed.
	nt.hold = map[string]bool{"a": true}
	nt.settle()
	if nt.applied["c"][0] != 1 {
		t.Fatalf("tail applied %d", nt.applied["c"][0])
	}
	if _, ok := nt.answers[7]; ok {
		t.Fatal("answered before the head synced")
	}
	if in, _ := nt.nodes["c"].Info(0); in.Committed != 0 {
		t.Fatalf("tail committed %d before the head synced", in.Committed)
	}
	nt.hold = nil
	nt.settle()
	if a, ok := nt.answers[7]; !ok || a.Err != nil {
		t.Fatalf("not answered once synced everywhere: %+v %v", a, ok)
	}

	// The tail never gets the next one: no answer until it has it.
	if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 8, ID: ReqID{1, 2}, Ops: put("k")}); err != nil {
		t.Fatal(err)
	}
	nt.drain("a")
	nt.drop = func(m Msg) bool { return m.To == "c" } // the tail never gets it
	nt.settle()
	if _, ok := nt.answers[8]; ok {
		t.Fatal("answered without the tail")
	}
	nt.drop = nil
	nt.advance(2 * time.Second) // retransmit
	nt.settle()
	if a, ok := nt.answers[8]; !ok || a.Err != nil {
		t.Fatalf("not answered after the tail synced: %+v %v", a, ok)
	}
	for _, id := range []string{"a", "b", "c"} {
		if nt.applied[id][0] != 2 {
			t.Fatalf("%s applied %d", id, nt.applied[id][0])
		}
	}
}

func TestRetryAppliedOnce(t *testing.T) {
	nt := newNet(t, "a", "b")
	nt.ring(1, ringmeta.Chain{Members: []string{"a", "b"}, Version: 1})
	nt.advance(2 * time.Second)
	nt.settle()                             // the head's first probe
	for tok := uint64(1); tok <= 2; tok++ { // the same request twice
		if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: tok, ID: ReqID{9, 1}, Ops: put("k")}); err != nil {
			t.Fatal(err)
		}
		nt.drain("a")
	}
	nt.settle()
	if nt.applied["a"][0] != 1 || nt.applied["b"][0] != 1 {
		t.Fatalf("applied %v", nt.applied)
	}
	if len(nt.answers) != 2 {
		t.Fatalf("answers %v", nt.answers)
	}
	// The same id for another write is refused, not answered as a retry.
	for _, ops := range [][]storage.Op{put("other"), {{Kind: storage.OpDelete, Key: []byte("k")}}} {
		if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 3, ID: ReqID{9, 1}, Ops: ops}); !errors.Is(err, ErrIDReused) {
			t.Fatalf("reused id: %v", err)
		}
	}
}

func TestRestartResendsLog(t *testing.T) {
	nt := newNet(t, "a", "b")
	nt.ring(1, ringmeta.Chain{Members: []string{"a", "b"}, Version: 1})
	nt.advance(2 * time.Second)
	// The head holds an entry synced but never forwarded, and restarts.
	e := &Entry{Seq: 1, Ops: put("k"), ID: ReqID{3, 1}, Status: kvpb.Status_SUCCESS}
	nt.nodes["a"] = New(Config{ID: "a", Check: true})
	nt.applied["a"][0] = 1
	if err := nt.nodes["a"].Recover(0, Recovered{Applied: 1, Ver: 1, Log: []*Entry{e}}); err != nil {
		t.Fatal(err)
	}
	nt.ring(1, ringmeta.Chain{Members: []string{"a", "b"}, Version: 1})
	nt.settle()
	if nt.applied["b"][0] != 1 {
		t.Fatal("the recovered log was not resent to the successor")
	}
	// A retry of it is answered from the dedup table, not applied again.
	if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 5, ID: ReqID{3, 1}, Ops: put("k")}); err != nil {
		t.Fatal(err)
	}
	nt.drain("a")
	nt.advance(2 * time.Second)
	nt.settle()
	if a, ok := nt.answers[5]; !ok || a.Err != nil || nt.applied["a"][0] != 1 {
		t.Fatalf("retry: %+v %v applied %d", a, ok, nt.applied["a"][0])
	}
}

func TestReadsNeedLeaseAndHoldback(t *testing.T) {
	nt := newNet(t, "a", "b")
	nt.ring(1, ringmeta.Chain{Members: []string{"a", "b"}, Version: 1})
	if _, _, err := nt.nodes["b"].Read(nt.now, 0, ReadReq{Key: []byte("k")}); err != ErrNotReady {
		t.Fatalf("read during the holdback: %v", err)
	}
	nt.advance(2 * time.Second)
	nt.settle() // lease requests and grants
	if ok, _, err := nt.nodes["b"].Read(nt.now, 0, ReadReq{Key: []byte("k")}); !ok || err != nil {
		t.Fatalf("tail read under lease: %v %v", ok, err)
	}
	// Without renewals the lease runs out.
	nt.now += Mono(time.Second)
	if _, _, err := nt.nodes["b"].Read(nt.now, 0, ReadReq{Key: []byte("k")}); err != ErrNotReady {
		t.Fatalf("read after the lease ran out: %v", err)
	}
}

// A head that crashed after forwarding an entry it had not synced comes
// back without it, at the same chain version (the ECS has not stripped it
// yet). Its successor holds the entry: the head must take it back before
// it sequences, not give its seq to another write.
func TestRestartedHeadTakesBackWhatItForwarded(t *testing.T) {
	nt := newNet(t, "a", "b")
	ch := ringmeta.Chain{Members: []string{"a", "b"}, Version: 1}
	nt.ring(1, ch)
	nt.advance(2 * time.Second)
	nt.settle()
	nt.hold = map[string]bool{"a": true}
	if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 1, ID: ReqID{1, 1}, Ops: put("k"), WallMs: 1}); err != nil {
		t.Fatal(err)
	}
	nt.drain("a")
	nt.settle()
	if nt.applied["b"][0] != 1 {
		t.Fatalf("successor applied %d", nt.applied["b"][0])
	}
	// Crash: a's storage kept nothing of seq 1.
	nt.hold, nt.syncs["a"] = nil, nil
	nt.nodes["a"] = New(Config{ID: "a", Check: true})
	if err := nt.nodes["a"].Recover(0, Recovered{Ver: 1, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	nt.applied["a"][0] = 0
	nt.nodes["a"].SetRing(nt.now, &ringmeta.Ring{Epoch: 1, Partitions: 1, Replicas: 3, Chains: []ringmeta.Chain{ch}})
	nt.nodes["a"].EtcdContact(nt.now)
	nt.drain("a")
	if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 2, ID: ReqID{2, 1}, Ops: put("k")}); err != ErrNotReady {
		t.Fatalf("restarted head took a write before its probe: %v", err)
	}
	nt.settle()
	if nt.applied["a"][0] != 1 {
		t.Fatalf("head applied %d after its probe, want the successor's 1", nt.applied["a"][0])
	}
	nt.advance(2 * time.Second) // past the holdback of a first adoption
	nt.settle()
	if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 3, ID: ReqID{2, 1}, Ops: put("k")}); err != nil {
		t.Fatal(err)
	}
	nt.drain("a")
	nt.settle()
	if nt.applied["a"][0] != 2 || nt.applied["b"][0] != 2 {
		t.Fatalf("applied a=%d b=%d, want 2 (a new seq)", nt.applied["a"][0], nt.applied["b"][0])
	}
	if a, ok := nt.answers[3]; !ok || a.Err != nil {
		t.Fatalf("write after the probe not answered: %+v %v", a, ok)
	}
}

// A reorder that puts the head below the others: the new head may lack an
// entry in flight that the old head forwarded to someone else. It takes it
// back before it sequences, so a retry of that write is answered, not
// applied a second time.
func TestReorderedHeadTakesBackWhatItLacks(t *testing.T) {
	nt := newChainNet(t)
	// a sequences seq 1; only c... no: b gets it, c does not yet.
	nt.drop = func(m Msg) bool { return m.To == "c" }
	if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 1, ID: ReqID{7, 1}, Ops: put("k")}); err != nil {
		t.Fatal(err)
	}
	nt.drain("a")
	nt.settle()
	nt.drop = nil
	if nt.applied["b"][0] != 1 || nt.applied["c"][0] != 0 {
		t.Fatalf("applied b=%d c=%d", nt.applied["b"][0], nt.applied["c"][0])
	}
	// Reorder to [c, a, b]: c heads without seq 1.
	nt.ring(2, ringmeta.Chain{Members: []string{"c", "a", "b"}, Version: 2})
	if err := nt.nodes["c"].Propose(nt.now, 0, Proposal{Token: 2, ID: ReqID{7, 1}, Ops: put("k")}); err != ErrNotReady {
		t.Fatalf("new head took the retry before its probe: %v", err)
	}
	nt.settle()
	if nt.applied["c"][0] != 1 {
		t.Fatalf("new head applied %d after its probe, want 1", nt.applied["c"][0])
	}
	nt.advance(2 * time.Second)
	nt.settle()
	if err := nt.nodes["c"].Propose(nt.now, 0, Proposal{Token: 3, ID: ReqID{7, 1}, Ops: put("k")}); err != nil {
		t.Fatal(err)
	}
	nt.drain("c")
	nt.settle()
	for _, id := range []string{"a", "b", "c"} {
		if nt.applied[id][0] != 1 {
			t.Fatalf("%s applied %d: the retry was applied again", id, nt.applied[id][0])
		}
	}
	if a, ok := nt.answers[3]; !ok || a.Err != nil {
		t.Fatalf("retry not answered: %+v %v", a, ok)
	}
}

// Under load a member's steps send only down the chain and the tail's ack
// straight to the head: the acks relayed up (tail to middle, middle to
// head) go with the tick, so in a cluster of three each server sends to
// one other. The middle learns of the commit at once all the same, from
// the head's next update (its nearest-replica reads need it).
func TestRelayedAcksWaitForTick(t *testing.T) {
	nt := newChainNet(t)
	type hop struct{ from, to string }
	var acks []hop
	nt.drop = func(m Msg) bool {
		if m.Kind == MsgAck {
			acks = append(acks, hop{m.From, m.To})
		}
		return false
	}
	if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 1, ID: ReqID{1, 1}, Ops: put("k")}); err != nil {
		t.Fatal(err)
	}
	nt.drain("a")
	nt.settle()
	if a, ok := nt.answers[1]; !ok || a.Err != nil {
		t.Fatalf("not answered on the tail's direct ack: %+v %v", a, ok)
	}
	if len(acks) != 1 || acks[0] != (hop{"c", "a"}) {
		t.Fatalf("acks before the tick: %v, want only c->a", acks)
	}
	if in, _ := nt.nodes["b"].Info(0); in.Committed != 1 {
		t.Fatalf("middle committed %d with no relayed ack, want 1 from the head's update", in.Committed)
	}
	acks = nil
	for range 2 { // each relay waits for its sender's tick
		nt.advance(30 * time.Millisecond)
		nt.settle()
	}
	want := map[hop]bool{{"c", "b"}: true, {"b", "a"}: true}
	for _, h := range acks {
		delete(want, h)
	}
	if len(want) != 0 {
		t.Fatalf("the tick sent acks %v, missing %v", acks, want)
	}
}

// A read at the tail of a key with a write in flight is answered at once
// with the key's last committed record, not the write applied there; one
// the tail has no record of before the write waits for the commit.
func TestTailReadsLastCommittedInFlight(t *testing.T) {
	nt := newChainNet(t)
	putV := func(tok uint64, key, v string) {
		t.Helper()
		ops := []storage.Op{{Kind: storage.OpPut, Key: []byte(key), Value: []byte(v)}}
		if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: tok, ID: ReqID{1, tok}, Ops: ops}); err != nil {
			t.Fatal(err)
		}
		nt.drain("a")
	}
	read := func(key string) (bool, *storage.Record) {
		t.Helper()
		serve, prior, err := nt.nodes["c"].Read(nt.now, 0, ReadReq{Token: 100, Key: []byte(key)})
		if err != nil {
			t.Fatal(err)
		}
		return serve, prior
	}
	putV(1, "k", "v1")
	nt.settle()
	if _, ok := nt.answers[1]; !ok {
		t.Fatal("v1 not committed")
	}
	// v2 applied everywhere, synced nowhere but the head: in flight.
	nt.hold = map[string]bool{"b": true, "c": true}
	putV(2, "k", "v2")
	putV(3, "fresh", "f1")
	nt.settle()
	if _, ok := nt.answers[2]; ok || nt.applied["c"][0] != 3 {
		t.Fatalf("v2 answered %v, tail applied %d", ok, nt.applied["c"][0])
	}
	serve, prior := read("k")
	if !serve || prior == nil || string(prior.Value) != "v1" || prior.Seq != 1 {
		t.Fatalf("read of k with v2 in flight: serve %v prior %+v, want v1 at once", serve, prior)
	}
	if serve, prior := read("fresh"); serve || prior != nil {
		t.Fatalf("read of a key with no record before its write in flight: serve %v prior %+v, want a wait", serve, prior)
	}
	nt.hold = nil
	nt.settle()
	if _, ok := nt.answers[2]; !ok {
		t.Fatal("v2 not committed")
	}
	if a, ok := nt.answers[100]; !ok || a.Err != nil {
		t.Fatalf("the waiting read was not served at the commit: %+v %v", a, ok)
	}
	if serve, prior := read("k"); !serve || prior != nil {
		t.Fatalf("read of k once v2 committed: serve %v prior %+v, want storage", serve, prior)
	}
	if nt.nodes["c"].Stats().PriorReads != 1 {
		t.Fatalf("prior reads %d", nt.nodes["c"].Stats().PriorReads)
	}
}

// A learner promoted to tail must not answer a read with the record a key
// held before a write the old tail committed and the head acknowledged
// while the learner missed it: that write was not in flight, whatever the
// new tail knows of its commit. Here the old tail commits v2 without
// feeding it to the learner, and the head's watermark at the new version
// is lost, so the new tail applies and syncs v2 but cannot commit it yet.
// The read waits, and the lost watermark is sent again.
func TestPromotedTailNoPriorOfAcknowledgedWrite(t *testing.T) {
	nt := newNet(t, "a", "b", "c")
	nt.ring(1, ringmeta.Chain{Members: []string{"a", "b"}, Version: 1})
	nt.advance(2 * time.Second)
	nt.settle()
	putV := func(tok uint64, v string) {
		t.Helper()
		ops := []storage.Op{{Kind: storage.OpPut, Key: []byte("k"), Value: []byte(v)}}
		if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: tok, ID: ReqID{1, tok}, Ops: ops}); err != nil {
			t.Fatal(err)
		}
		nt.drain("a")
		nt.settle()
		if a, ok := nt.answers[tok]; !ok || a.Err != nil {
			t.Fatalf("put %s not acknowledged: %+v %v", v, a, ok)
		}
	}
	putV(1, "v1")
	nt.ring(2, ringmeta.Chain{Members: []string{"a", "b"}, Learner: "c", Version: 2})
	nt.settle()
	if in, _ := nt.nodes["c"].Info(0); in.Applied != 1 {
		t.Fatalf("learner applied %d, want the snapshot at 1", in.Applied)
	}
	nt.drop = func(m Msg) bool { return m.Learner && m.Kind == MsgUpdate }
	putV(2, "v2")
	// Promote c; the watermark a sends b at the new version is lost.
	nt.drop = func(m Msg) bool { return m.Kind == MsgUpdate && m.From == "a" && len(m.Entries) == 0 }
	nt.ring(3, ringmeta.Chain{Members: []string{"a", "b", "c"}, Version: 3})
	nt.settle()
	nt.advance(2 * time.Second) // past the holdback; leases granted
	nt.settle()
	if in, _ := nt.nodes["c"].Info(0); in.Applied != 2 || in.Unsynced {
		t.Fatalf("new tail applied %d unsynced %v, want 2 and synced", in.Applied, in.Unsynced)
	}
	serve, prior, err := nt.nodes["c"].Read(nt.now, 0, ReadReq{Token: 100, Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	if serve {
		got := "storage"
		if prior != nil {
			got = string(prior.Value)
		}
		if prior != nil || nt.records["c"]["k"].Seq != 2 {
			t.Fatalf("read of k after v2 was acknowledged served %q", got)
		}
	}
	nt.drop = nil
	for i := 0; i < 30 && !serve; i++ {
		nt.advance(100 * time.Millisecond)
		nt.settle()
		_, serve = nt.answers[100]
	}
	if !serve {
		in, _ := nt.nodes["c"].Info(0)
		t.Fatalf("the read still waits: the new tail committed %d of applied %d", in.Committed, in.Applied)
	}
}
