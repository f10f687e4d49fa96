package ringmeta

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"slices"
)

// MaxPartitions bounds P so that partition 0xFFFF stays free for storage
// metadata and a partition id fits two bytes.
const MaxPartitions = 32768

// State is a server's state in the ring.
type State string

const (
	// StateActive servers serve the partitions their chains give them.
	StateActive State = "active"
	// StateDown servers lost their etcd lease; they keep their chains until
	// the ECS moves them.
	StateDown State = "down"
	// StateLeaving servers are being drained by `ecs remove`.
	StateLeaving State = "leaving"
)

// Server is one kvserver as the ring knows it.
type Server struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	Zone string `json:"zone,omitempty"`
	// Coords place the server for clients' nearest reads (kvserver --coords).
	Coords  []float64 `json:"coords,omitempty"`
	State   State     `json:"state"`
	Metrics string    `json:"metrics,omitempty"` // host:port of its /metrics
}

// Chain is the replica chain of one partition: Members[0] is the head, the
// last member the tail. Version changes whenever Members or Learner change.
type Chain struct {
	Members []string `json:"m"`
	Version uint64   `json:"v"`
	Learner string   `json:"l,omitempty"`
}

// Limits are cluster-wide input limits, enforced by every server and checked
// early by clients.
type Limits struct {
	MaxKeyBytes   int `json:"max_key_bytes"`
	MaxValueBytes int `json:"max_value_bytes"`
}

// MessageBytes is the smallest gRPC message size servers of a cluster with
// these limits must accept: a replication batch holds up to 4 MiB of updates
// plus one more (the largest key and value), with acks and framing.
func (l Limits) MessageBytes() int { return l.MaxKeyBytes + l.MaxValueBytes + 5<<20 }

// Ring is the published metadata. Treat a published Ring as read-only.
type Ring struct {
	Epoch      uint64 `json:"epoch"`
	Partitions int    `json:"partitions"`
	Replicas   int    `json:"replicas"`
	Limits     Limits `json:"limits"`
	// Auth means every key operation needs a login token and runs in the
	// user's namespace; fixed at cluster creation.
	Auth    bool     `json:"auth,omitempty"`
	Servers []Server `json:"servers"`
	Chains  []Chain  `json:"chains"`
}

// Marshal encodes the ring as stored in etcd.
func (r *Ring) Marshal() ([]byte, error) { return json.Marshal(r) }

// Unmarshal decodes and validates a ring.
func Unmarshal(b []byte) (*Ring, error) {
	var r Ring
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the invariants every reader relies on.
func (r *Ring) Validate() error {
	p := r.Partitions
	if p < 1 || p > MaxPartitions || bits.OnesCount(uint(p)) != 1 {
		return fmt.Errorf("%w: partitions %d is not a power of two in 1..%d", ErrInvalid, p, MaxPartitions)
	}
	if r.Replicas < 1 {
		return fmt.Errorf("%w: replicas %d < 1", ErrInvalid, r.Replicas)
	}
	if r.Limits.MaxKeyBytes < 1 || r.Limits.MaxValueBytes < 0 {
		return fmt.Errorf("%w: limits %+v", ErrInvalid, r.Limits)
	}
	if len(r.Chains) != 0 && len(r.Chains) != p {
		return fmt.Errorf("%w: %d chains for %d partitions", ErrInvalid, len(r.Chains), p)
	}
	ids := make(map[string]bool, len(r.Servers))
	for _, s := range r.Servers {
		if s.ID == "" || ids[s.ID] {
			return fmt.Errorf("%w: empty or duplicate server id %q", ErrInvalid, s.ID)
		}
		ids[s.ID] = true
	}
	for i, c := range r.Chains {
		if err := c.validate(ids); err != nil {
			return fmt.Errorf("%w: partition %d: %w", ErrInvalid, i, err)
		}
	}
	return nil
}

func (c Chain) validate(ids map[string]bool) error {
	seen := make(map[string]bool, len(c.Members)+1)
	all := slices.Clip(c.Members)
	if c.Learner != "" {
		all = append(all, c.Learner)
	}
	for _, m := range all {
		if !ids[m] {
			return fmt.Errorf("%w %q", ErrUnknownServer, m)
		}
		if seen[m] {
			return fmt.Errorf("server %q twice in chain", m)
		}
		seen[m] = true
	}
	return nil
}

// Clone returns a deep copy for building the next epoch.
func (r *Ring) Clone() *Ring {
	c := *r
	c.Servers = slices.Clone(r.Servers)
	if r.Chains == nil { // keep "no layout yet" nil, as Marshal shows it
		return &c
	}
	c.Chains = make([]Chain, len(r.Chains))
	for i, ch := range r.Chains {
		c.Chains[i] = Chain{Members: slices.Clone(ch.Members), Version: ch.Version, Learner: ch.Learner}
	}
	return &c
}

// Server returns the server with the given id.
func (r *Ring) Server(id string) (Server, bool) {
	for _, s := range r.Servers {
		if s.ID == id {
			return s, true
		}
	}
	return Server{}, false
}

// Chain returns partition p's chain (zero Chain when the ring has no layout yet).
func (r *Ring) Chain(p int) Chain {
	if p < 0 || p >= len(r.Chains) {
		return Chain{}
	}
	return r.Chains[p]
}

// Head returns the id of the head of partition p's chain, "" if none.
func (c Chain) Head() string {
	if len(c.Members) == 0 {
		return ""
	}
	return c.Members[0]
}

// Tail returns the id of the tail of the chain, "" if none.
func (c Chain) Tail() string {
	if len(c.Members) == 0 {
		return ""
	}
	return c.Members[len(c.Members)-1]
}

// Index returns id's position in the chain, or -1.
func (c Chain) Index(id string) int { return slices.Index(c.Members, id) }
