package etcdkeys

import (
	"encoding/json"
	"strconv"
)

// Member is the value a kvserver writes under its lease-bound servers/<id> key.
type Member struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	Zone string `json:"zone,omitempty"`
	// Coords place the server for clients' nearest reads (kvserver --coords).
	Coords      []float64 `json:"coords,omitempty"`
	Metrics     string    `json:"metrics,omitempty"`
	PID         int       `json:"pid"`
	StartUnixMs int64     `json:"start_unix_ms"`
	// Incarnation grows with every start of the server (its start time in
	// nanoseconds), so the ECS tells a restarted server from the old one.
	// The server answers health probes for it under HealthService.
	Incarnation uint64 `json:"incarnation"`
	// Epoch is the latest ring epoch the server applied; the ECS waits on it.
	Epoch uint64 `json:"epoch"`
	// Copy progress of the server's learner catch-ups, for rebalancing
	// progress: keys and bytes (keys and values) received since the
	// process started, the bytes of copies still in progress, and the
	// store's size on disk.
	CopiedKeys   uint64 `json:"copied_keys,omitempty"`
	CopiedBytes  uint64 `json:"copied_bytes,omitempty"`
	CopyingBytes uint64 `json:"copying_bytes,omitempty"`
	DiskBytes    uint64 `json:"disk_bytes,omitempty"`
}

// Marshal encodes a member record.
func (m Member) Marshal() []byte {
	b, _ := json.Marshal(m) // cannot fail: plain fields
	return b
}

// UnmarshalMember decodes a member record.
func UnmarshalMember(b []byte) (Member, error) {
	var m Member
	err := json.Unmarshal(b, &m)
	return m, err
}

// HealthService is the gRPC health service under which a server answers
// SERVING for the given incarnation. The ECS probes that service, not the
// server-wide "", so an answer vouches only for the incarnation that gave
// it: any other process on the address (a new incarnation not registered
// yet, or something else that took the port) answers NOT_FOUND.
func HealthService(incarnation uint64) string {
	return "ecskv.incarnation/" + strconv.FormatUint(incarnation, 10)
}
