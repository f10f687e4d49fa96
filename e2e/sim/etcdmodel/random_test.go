package etcdmodel

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// driver makes random calls on a store from a seeded PCG, writes every
// result to a transcript and checks the invariants after each call. A
// watcher keeps a mirror of the keyspace by the re-list protocol the ECS
// uses, so compaction and lagging watches are exercised too.
type driver struct {
	t      testing.TB
	rng    *rand.Rand
	s      *Store
	now    Time
	step   int
	leases []LeaseID // every lease granted, live or not
	out    strings.Builder

	mirror  map[string]KV
	mw      WatchID
	lastRev int64     // revision of the mirror's last applied event
	watches []WatchID // extra watches from random revisions
	prevRev int64
}

func newDriver(t testing.TB, seed uint64) *driver {
	d := &driver{t: t, rng: rand.New(rand.NewPCG(seed, 0)), s: New()}
	d.relist()
	return d
}

func (d *driver) run(steps int) string {
	for d.step = 0; d.step < steps; d.step++ {
		d.call()
		d.drainMirror()
		d.drainWatches()
		d.check()
	}
	return d.out.String()
}

func (d *driver) logf(format string, args ...any) {
	fmt.Fprintf(&d.out, "%d t=%d ", d.step, d.now)
	fmt.Fprintf(&d.out, format, args...)
	d.out.WriteByte('\n')
}

func (d *driver) key() string {
	return fmt.Sprintf("%s/%d", []string{"a", "b"}[d.rng.IntN(2)], d.rng.IntN(4))
}

// lease picks no lease, a live one, or any ever granted (maybe gone).
func (d *driver) lease() LeaseID {
	live := d.s.Leases()
	switch n := d.rng.IntN(4); {
	case n == 0 || len(d.leases) == 0:
		return 0
	case n == 1 || len(live) == 0:
		return d.leases[d.rng.IntN(len(d.leases))]
	default:
		return live[d.rng.IntN(len(live))]
	}
}

func (d *driver) call() {
	s, r := d.s, d.rng
	d.now += Time(r.Int64N(int64(1500 * time.Millisecond)))
	val := []byte(fmt.Sprintf("v%d", d.step))
	switch r.IntN(13) {
	case 0, 1, 2:
		rev, err := s.Put(d.now, d.key(), val, d.lease())
		d.logf("put %d %v", rev, err)
	case 3:
		rev, err := s.Delete(d.now, d.key())
		d.logf("delete %d %v", rev, err)
	case 4:
		k := d.key()
		c := Cmp{Key: k, Target: CmpTarget(r.IntN(5) + 1), Op: CmpOp(r.IntN(4) + 1),
			Value: []byte(fmt.Sprintf("v%d", r.IntN(d.step+1))), Int: r.Int64N(s.Rev() + 2)}
		res, err := s.Txn(d.now, []Cmp{c}, []Op{OpPut(k, val, d.lease()), OpGet(k)},
			[]Op{OpGetPrefix(k[:2]), OpDeletePrefix(d.key())})
		d.logf("txn %+v %v", res, err)
	case 5:
		id := s.Grant(d.now, time.Duration(1+r.IntN(5))*time.Second)
		d.leases = append(d.leases, id)
		d.logf("grant %d", id)
	case 6, 7:
		id := d.lease()
		d.logf("keepalive %d %v", id, s.KeepAlive(d.now, id))
	case 8:
		id := d.lease()
		d.logf("revoke %d %v", id, s.Revoke(d.now, id))
	case 9:
		if r.IntN(3) == 0 { // an outage ends
			s.Promote(d.now)
			d.logf("promote")
		} else {
			d.logf("advance %v", s.Advance(d.now))
		}
	case 10:
		if s.Rev() > s.CompactRev() {
			rev := s.CompactRev() + 1 + r.Int64N(s.Rev()-s.CompactRev())
			d.logf("compact %d %v", rev, s.Compact(rev))
		}
	case 11:
		k, rev, err := s.Campaign(d.now, "e", val, d.lease())
		lead, ok := s.Leader("e")
		d.logf("campaign %s %d %v leader %s %v", k, rev, err, lead.Key, ok)
	case 12:
		w := s.Watch([]string{"", "a/", "b/1"}[r.IntN(3)], r.Int64N(s.Rev()+2))
		d.watches = append(d.watches, w)
		d.logf("watch %d", w)
	}
}

// relist reads the keyspace and watches from the next revision.
func (d *driver) relist() {
	d.mirror = map[string]KV{}
	for _, kv := range d.s.Range("") {
		d.mirror[kv.Key] = kv
	}
	d.lastRev = d.s.Rev()
	d.mw = d.s.Watch("", d.lastRev+1)
}

// drainMirror sometimes delivers the mirror watch's events; when it does,
// the mirror must equal the keyspace.
func (d *driver) drainMirror() {
	if d.rng.IntN(4) != 0 {
		return // the link is slow: the watch lags and compaction may cancel it
	}
	for _, ev := range d.s.Drain(d.mw) {
		switch ev.Type {
		case EventCompacted:
			d.logf("mirror compacted at %d", ev.CompactRev)
			d.relist()
			continue
		case EventPut:
			d.mirror[ev.KV.Key] = ev.KV
		case EventDelete:
			delete(d.mirror, ev.KV.Key)
		}
		require.Greater(d.t, ev.KV.ModRev, int64(0))
		require.GreaterOrEqual(d.t, ev.KV.ModRev, d.lastRev, "events in revision order")
		d.lastRev = ev.KV.ModRev
	}
	got := make([]KV, 0, len(d.mirror))
	for _, k := range slices.Sorted(maps.Keys(d.mirror)) {
		got = append(got, d.mirror[k])
	}
	require.Equal(d.t, d.s.Range(""), got, "step %d: mirror by watch", d.step)
}

func (d *driver) drainWatches() {
	for _, w := range d.watches {
		if d.rng.IntN(2) == 0 {
			continue
		}
		evs := d.s.Drain(w)
		if len(evs) == 0 {
			continue
		}
		for i, ev := range evs {
			if ev.Type == EventCompacted {
				require.Equal(d.t, len(evs)-1, i, "compacted is terminal")
			} else if i > 0 {
				require.GreaterOrEqual(d.t, ev.KV.ModRev, evs[i-1].KV.ModRev)
			}
		}
		d.logf("drain %d %v", w, summary(evs))
	}
}

func (d *driver) check() {
	t, s := d.t, d.s
	require.NoError(t, s.Check(), "step %d", d.step)
	rev := s.Rev()
	require.GreaterOrEqual(t, rev, d.prevRev, "revision never goes back")
	d.prevRev = rev
	for _, kv := range s.Range("") {
		require.LessOrEqual(t, kv.ModRev, rev)
		require.LessOrEqual(t, kv.CreateRev, kv.ModRev)
		require.GreaterOrEqual(t, kv.Version, int64(1))
		if kv.Lease != 0 {
			require.Contains(t, s.LeaseKeys(kv.Lease), kv.Key)
		}
	}
	h := s.History()
	for i, ev := range h {
		require.GreaterOrEqual(t, ev.KV.ModRev, s.CompactRev())
		require.LessOrEqual(t, ev.KV.ModRev, rev)
		if i > 0 {
			require.GreaterOrEqual(t, ev.KV.ModRev, h[i-1].KV.ModRev, "history ordered")
		}
	}
	if at, ok := s.NextDeadline(); ok {
		require.Greater(t, at, s.Now(), "no lease outlives its deadline")
	}
}

func TestRandomOps(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			newDriver(t, seed).run(400)
		})
	}
}

func TestDeterminism(t *testing.T) {
	tests := []struct {
		name string
		seed uint64
	}{
		{"seed 7", 7},
		{"seed 0xdeadbeef", 0xdeadbeef},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newDriver(t, tt.seed).run(300)
			b := newDriver(t, tt.seed).run(300)
			require.True(t, a == b, "same calls, different results:\n%s", firstDiff(a, b))
			require.False(t, a == newDriver(t, tt.seed+1).run(300), "the seed matters")
			for _, probe := range []string{"compact ", "mirror compacted", "advance [", "promote", "drain "} {
				require.True(t, strings.Contains(a, probe), "the run reaches %q", probe)
			}
		})
	}
}

// firstDiff shows the first differing transcript line.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return la[i] + "\n" + lb[i]
		}
	}
	return "one transcript is a prefix of the other"
}

func FuzzRandomOps(f *testing.F) {
	f.Add(uint64(1), uint16(200))
	f.Add(uint64(42), uint16(1000))
	f.Fuzz(func(t *testing.T, seed uint64, steps uint16) {
		newDriver(t, seed).run(int(steps % 2000))
	})
}

func TestCheckDetects(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(s *Store)
	}{
		{"version zero", func(s *Store) { s.kvs[0].Version = 0 }},
		{"mod rev above rev", func(s *Store) { s.kvs[0].ModRev = s.rev + 1 }},
		{"create after mod", func(s *Store) { s.kvs[0].CreateRev = s.kvs[0].ModRev + 1 }},
		{"keys out of order", func(s *Store) { s.kvs[0], s.kvs[1] = s.kvs[1], s.kvs[0] }},
		{"leased key the lease forgot", func(s *Store) { s.leases[0].keys = nil }},
		{"lease lists a key it lost", func(s *Store) { s.kvs[1].Lease = 0 }},
		{"history out of order", func(s *Store) { s.history[0], s.history[1] = s.history[1], s.history[0] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			id := s.Grant(0, time.Second)
			mustPut(t, s, 0, "a", "1", 0)
			mustPut(t, s, 0, "b", "1", id)
			require.NoError(t, s.Check())
			tt.corrupt(s)
			require.ErrorIs(t, s.Check(), ErrInvariant)
		})
	}
}
