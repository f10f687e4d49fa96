package opclient

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// `ecs check` asks every reachable server for a digest of each partition it
// holds (kvpb.Admin/Digest) and compares the members of every chain: they
// must agree on applied_seq and on the content hash.

// CheckReport is the result of a check.
type CheckReport struct {
	Epoch       uint64       `json:"epoch"`
	Partitions  int          `json:"partitions"`
	Servers     int          `json:"servers"`           // servers queried
	Skipped     []string     `json:"skipped,omitempty"` // down servers, not queried
	Differences []Difference `json:"differences"`
}

// Difference is one partition whose members disagree.
type Difference struct {
	Partition int             `json:"partition"`
	Kind      string          `json:"kind"` // "seq", "hash" or "missing"
	Replicas  []ReplicaDigest `json:"replicas"`
}

// ReplicaDigest is one member's digest of a partition.
type ReplicaDigest struct {
	Server       string `json:"server"`
	Missing      bool   `json:"missing,omitempty"` // the member does not hold the partition
	AppliedSeq   uint64 `json:"applied_seq"`
	Hash         uint64 `json:"hash"`
	Keys         uint64 `json:"keys"`
	ChainVersion uint64 `json:"chain_version"`
}

func (d Difference) String() string {
	s := fmt.Sprintf("partition %d: %s differs:", d.Partition, d.Kind)
	for _, r := range d.Replicas {
		if r.Missing {
			s += fmt.Sprintf(" %s=missing", r.Server)
			continue
		}
		s += fmt.Sprintf(" %s=seq %d hash %016x keys %d v%d", r.Server, r.AppliedSeq, r.Hash, r.Keys, r.ChainVersion)
	}
	return s
}

// AdminDialer opens an Admin client to a server; Check closes it.
type AdminDialer func(addr string) (kvpb.AdminClient, io.Closer, error)

// CheckOptions tune Check; the zero value is usable.
type CheckOptions struct {
	Dial AdminDialer // default: plaintext gRPC; see AdminDialerWith
	// Retries re-examines differing partitions this many times (default 3),
	// RetryDelay apart (default 300ms): a write in flight makes the head
	// briefly ahead of the tail, which is no fault.
	Retries    int
	RetryDelay time.Duration
}

// Check compares every partition's replicas. It returns an error only when
// it cannot check (etcd or a server unreachable); differences are in the
// report.
func Check(ctx context.Context, cli *clientv3.Client, cluster string, opts CheckOptions) (*CheckReport, error) {
	if opts.Dial == nil {
		opts.Dial = DialAdmin
	}
	if opts.Retries == 0 {
		opts.Retries = 3
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = 300 * time.Millisecond
	}
	var rep *CheckReport
	var parts []uint32 // nil: all
	for attempt := 0; ; attempt++ {
		r, _, _, err := ctlstate.Load(ctx, cli, cluster)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, fmt.Errorf("%w: %q", ErrNoCluster, cluster)
		}
		digests, skipped, err := collectDigests(ctx, r, parts, opts.Dial)
		if err != nil {
			return nil, err
		}
		diffs := compareReplicas(r, digests, parts)
		if rep == nil {
			rep = &CheckReport{Partitions: len(r.Chains), Servers: len(digests), Skipped: skipped}
		}
		rep.Epoch, rep.Differences = r.Epoch, diffs
		if rep.Differences == nil {
			rep.Differences = []Difference{} // JSON: [], not null
		}
		if len(diffs) == 0 || attempt >= opts.Retries {
			return rep, nil
		}
		parts = parts[:0]
		for _, d := range diffs {
			parts = append(parts, uint32(d.Partition))
		}
		select {
		case <-ctx.Done():
			return rep, nil
		case <-time.After(opts.RetryDelay):
		}
	}
}

// collectDigests queries every active or leaving server in parallel.
func collectDigests(ctx context.Context, r *ringmeta.Ring, parts []uint32, dial AdminDialer) (map[string]map[int]*kvpb.PartitionDigest, []string, error) {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		firstEr error
		skipped []string
	)
	out := map[string]map[int]*kvpb.PartitionDigest{}
	for _, s := range r.Servers {
		if s.State == ringmeta.StateDown {
			skipped = append(skipped, s.ID)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := digestOf(ctx, s, parts, dial)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstEr == nil {
				firstEr = err
			}
			out[s.ID] = got
		}()
	}
	wg.Wait()
	sort.Strings(skipped)
	return out, skipped, firstEr
}

func digestOf(ctx context.Context, s ringmeta.Server, parts []uint32, dial AdminDialer) (map[int]*kvpb.PartitionDigest, error) {
	ac, closer, err := dial(s.Addr)
	if err != nil {
		return nil, fmt.Errorf("ecs: digest of %s at %s: %w", s.ID, s.Addr, err)
	}
	defer closer.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := ac.Digest(ctx, &kvpb.DigestRequest{Partitions: parts})
	if err != nil {
		return nil, fmt.Errorf("ecs: digest of %s at %s: %w", s.ID, s.Addr, err)
	}
	got := make(map[int]*kvpb.PartitionDigest, len(resp.GetPartitions()))
	for _, d := range resp.GetPartitions() {
		got[int(d.GetPartition())] = d
	}
	return got, nil
}

// compareReplicas lists the partitions (all, or only parts) whose queried
// members disagree. A member without a digest for the partition counts as
// holding nothing, which is only a difference when another member holds
// writes.
func compareReplicas(r *ringmeta.Ring, digests map[string]map[int]*kvpb.PartitionDigest, parts []uint32) []Difference {
	var diffs []Difference
	for p, ch := range r.Chains {
		if parts != nil && !slices.Contains(parts, uint32(p)) {
			continue
		}
		var reps []ReplicaDigest
		for _, id := range ch.Members {
			held, queried := digests[id]
			if !queried {
				continue
			}
			d, ok := held[p]
			if !ok {
				reps = append(reps, ReplicaDigest{Server: id, Missing: true})
				continue
			}
			reps = append(reps, ReplicaDigest{Server: id, AppliedSeq: d.GetAppliedSeq(), Hash: d.GetHash(),
				Keys: d.GetKeys(), ChainVersion: d.GetChainVersion()})
		}
		if kind := disagreement(reps); kind != "" {
			diffs = append(diffs, Difference{Partition: p, Kind: kind, Replicas: reps})
		}
	}
	return diffs
}

func disagreement(reps []ReplicaDigest) string {
	var present []ReplicaDigest
	missing, data := false, false
	for _, r := range reps {
		if r.Missing {
			missing = true
			continue
		}
		present = append(present, r)
		data = data || r.AppliedSeq > 0 || r.Keys > 0
	}
	for _, r := range present[min(1, len(present)):] {
		if r.AppliedSeq != present[0].AppliedSeq {
			return "seq"
		}
		if r.Hash != present[0].Hash {
			return "hash"
		}
	}
	if missing && data {
		return "missing"
	}
	return ""
}

// DialAdmin dials a server's admin service in plaintext: Check's default.
func DialAdmin(addr string) (kvpb.AdminClient, io.Closer, error) {
	return AdminDialerWith(grpc.WithTransportCredentials(insecure.NewCredentials()))(addr)
}

// AdminDialerWith dials servers' admin service with creds (a member's TLS
// certificate on a secure cluster).
func AdminDialerWith(creds grpc.DialOption) AdminDialer {
	return func(addr string) (kvpb.AdminClient, io.Closer, error) {
		conn, err := grpc.NewClient(addr, creds)
		if err != nil {
			return nil, nil, err
		}
		return kvpb.NewAdminClient(conn), conn, nil
	}
}
