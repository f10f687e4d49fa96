package chainsm

import (
	"fmt"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// Mono is a node's local monotonic time in nanoseconds. Only differences
// between a node's own Mono values mean anything.
type Mono int64

// ReqID identifies a client write: the client id (scoped by namespace) and
// the client's counter. The zero ReqID marks internal writes (TTL sweep),
// which are never deduplicated.
type ReqID struct{ Client, Seq uint64 }

// Entry is one sequenced write of a partition: what every member applies at
// Seq. Status and Res are the answer the head computed when it applied the
// entry, so any member can answer a retry after a failover; the head's
// apply also resolves conditional ops into the plain ones members apply
// (storage.Outcome). WallMs is the head's wall clock at sequencing; the
// dedup table keeps the request id by that time. Sum fingerprints the
// client's request as proposed (storage.OpsSum; 0: compute it from Ops).
type Entry struct {
	Seq    uint64
	Ops    []storage.Op
	ID     ReqID
	Status kvpb.Status
	Res    storage.Result
	WallMs int64
	Sum    uint64
}

// sum is the entry's request fingerprint.
func (e *Entry) sum() uint64 {
	if e.Sum != 0 {
		return e.Sum
	}
	return storage.OpsSum(e.Ops)
}

// MsgKind is the kind of a peer message.
type MsgKind uint8

// Peer messages. Every message but the lease ones names a partition and the
// chain version it was sent under; a receiver drops what is not of its own
// version (fencing) and the sender retries after adopting the newer one.
const (
	// MsgUpdate carries entries down the chain (or from the tail to its
	// learner when Learner is set), in seq order. Seq is the sender's
	// synced watermark: every seq <= Seq is synced on the sender and every
	// member above it (the tail commits up to it and its own synced point).
	// An update may carry only the watermark.
	MsgUpdate MsgKind = iota + 1
	// MsgAck tells the predecessor that every seq <= Seq is synced on the
	// sender and every member after it.
	MsgAck
	// MsgNack asks the predecessor (or the tail, for a learner) to resend
	// everything after Seq, the sender's applied seq: a gap, or a hello
	// after adopting a new chain version.
	MsgNack
	// MsgSync answers a nack: the sender resent what it holds; once the
	// receiver applied Seq it holds everything the sender held.
	MsgSync
	// MsgSnapReq asks the tail for a snapshot (a learner).
	MsgSnapReq
	// MsgSnapshot is the tail's snapshot of the partition at Seq, with its
	// dedup table; Snap is the shell's payload (the records).
	MsgSnapshot
	// MsgLeaseReq asks a chain neighbour for a read lease at Epoch.
	MsgLeaseReq
	// MsgLeaseResp grants (or refuses) it for LeaseNs nanoseconds.
	MsgLeaseResp
	// MsgProbe asks the successor, after a restart, for what it holds
	// beyond Seq (the sender's applied seq): a member forwards before its
	// own sync, so a restart may have lost entries its successor holds.
	MsgProbe
	// MsgProbeResp answers a probe with the entries after the probe's seq
	// and Seq = the sender's applied seq.
	MsgProbeResp
)

// LastMsgKind is the highest message kind.
const LastMsgKind = MsgProbeResp

var msgNames = [...]string{"", "update", "ack", "nack", "sync", "snapreq", "snapshot", "leasereq", "leaseresp", "probe", "proberesp"}

func (k MsgKind) String() string {
	if int(k) < len(msgNames) {
		return msgNames[k]
	}
	return fmt.Sprintf("MsgKind(%d)", uint8(k))
}

// Msg is one peer message. Fields unused by a kind are zero.
type Msg struct {
	Kind     MsgKind
	From, To string
	Part     int
	Ver      uint64 // chain version
	Seq      uint64
	Entries  []*Entry
	Learner  bool   // an update or nack between the tail and its learner
	Hello    bool   // MsgNack: the hello after adopting a chain version
	Trunc    uint64 // MsgSync: the sender's log starts after this seq; MsgUpdate: the sender's commit point
	Epoch    uint64
	Granted  bool
	LeaseNs  int64
	Dedup    []DedupRecord // MsgSnapshot
	Snap     any           // MsgSnapshot: the shell's records, which it writes before the step
	ReqToken uint64        // MsgLeaseReq/Resp: matches a response to its request
}

// StorageKind is the kind of a storage operation.
type StorageKind uint8

// Storage operations, applied by the shell in the order given, unsynced;
// Ready.Sync asks for a WAL sync after them.
const (
	// StApply writes Entry's ops, the partition's applied seq, Entry's
	// log record and its dedup record in one batch. At the head the shell
	// reports the status it computed through Advance.
	StApply StorageKind = iota + 1
	// StTruncate deletes the partition's log records with seq <= Seq.
	StTruncate
	// StForget deletes dedup records.
	StForget
	// StVersion records the chain version (and the epoch it was adopted
	// in) this member follows.
	StVersion
	// StDrop deletes everything of the partition: data, log, dedup, state.
	StDrop
	// StIngest completes a snapshot whose records the shell already wrote
	// (while Learning held): applied seq Seq, the dedup records.
	StIngest
)

// StorageOp is one storage operation.
type StorageOp struct {
	Kind  StorageKind
	Part  int
	Entry *Entry
	Seq   uint64
	Ver   uint64
	Epoch uint64
	IDs   []ReqID
	Dedup []DedupRecord
	// NeedStatus: a head apply; the shell reports what it computed
	// (storage.Outcome: the answer and the resolved ops) through Advance.
	NeedStatus bool
	// NeedPrior: a tail's apply of an entry whose only key has no write
	// in flight; the shell reports the record the key held before it, if
	// it knows it without reading storage (storage.Outcome.Prior), and
	// the tail serves reads of the key from it until the entry commits.
	NeedPrior bool
	// Unsynced (StVersion): the ECS may still mark this member unsynced
	// (a promoted learner, until a chain change shows the mark gone): it
	// reports its sync at this version, again after a restart.
	Unsynced bool
}

// DedupRecord is a remembered client write: the seq it got and its answer.
type DedupRecord struct {
	ID     ReqID
	Seq    uint64
	Status kvpb.Status
	WallMs int64
	Sum    uint64 // storage.OpsSum of the write; 0: not known
	Res    storage.Result
}

// Answer completes a waiting client call, named by the token the shell
// gave with the proposal or read.
type Answer struct {
	Token  uint64
	Status kvpb.Status    // write: SUCCESS/UPDATE/NOT_FOUND/CONDITION_FAILED...; read: SUCCESS means serve it now
	Seq    uint64         // write: the seq it was sequenced at (the version it wrote)
	Res    storage.Result // write: the rest of the head's answer
	Err    error          // ErrChainChanged, ErrNotResponsible...: the call failed
}

// ReportKind is the kind of a report for etcd.
type ReportKind uint8

const (
	// RepReady: a learner caught up with its tail (ready/<id>/<p>).
	RepReady ReportKind = iota + 1
	// RepSynced: a promoted member holds everything its predecessor held
	// (synced/<id>/<p>).
	RepSynced
	// RepEpoch: every partition adopted the ring of Epoch.
	RepEpoch
)

// Report is something the shell writes to etcd for the ECS.
type Report struct {
	Kind  ReportKind
	Part  int
	Ver   uint64
	Epoch uint64
}

// SnapshotSend asks the shell to send partition Part's records, as they
// are now (Seq applied), to the learner To in a MsgSnapshot.
type SnapshotSend struct {
	To    string
	Part  int
	Ver   uint64
	Seq   uint64
	Dedup []DedupRecord
}

// Ready is what the node asks its shell to do. Storage first, in order;
// then Sync if set (and SyncDone(Sync) once durable); messages, snapshots,
// answers and reports may go at once: nothing in them depends on an
// unsynced write.
type Ready struct {
	Storage   []StorageOp
	Sync      uint64
	Msgs      []Msg
	Snapshots []SnapshotSend
	Answers   []Answer
	Reports   []Report
	// Committed are the entries that became committed here (synced on
	// every member of the chain), in seq order per partition: what
	// watchers may see. The entries must not be modified.
	Committed []Committed
}

// Committed is a run of consecutive entries of a partition that became
// committed at this member.
type Committed struct {
	Part    int
	Entries []*Entry
}

// Empty reports whether rd asks for nothing.
func (rd *Ready) Empty() bool {
	return len(rd.Storage) == 0 && rd.Sync == 0 && len(rd.Msgs) == 0 && len(rd.Snapshots) == 0 &&
		len(rd.Answers) == 0 && len(rd.Reports) == 0 && len(rd.Committed) == 0
}
