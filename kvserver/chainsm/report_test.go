package chainsm

import (
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
)

// takeReports returns (and forgets) id's reports.
func (nt *net) takeReports(id string) []Report {
	r := nt.reports[id]
	nt.reports[id] = nil
	return r
}

// lastStored is id's last StVersion record.
func (nt *net) lastStored(id string) StorageOp {
	s := nt.stored[id]
	if len(s) == 0 {
		nt.t.Fatalf("%s stored no chain version", id)
	}
	return s[len(s)-1]
}

// A promoted member owes the ECS its synced report until a chain change
// shows the ECS cleared its mark. A failover is the one change the ECS
// makes while the mark stands, and the report made at the previous version
// may not have reached it (lost with the shell, or discounted as a
// restarted server's): the member reports again at the new version, and
// after a restart at that version. A learner added (or a reorder) means
// the mark is gone: no report then.
func TestSyncedReportOwedUntilMarkGone(t *testing.T) {
	nt := newNet(t, "a", "b", "c", "d")
	// c was just promoted to tail at version 2 (its stored record says it
	// owes the report).
	if err := nt.nodes["c"].Recover(0, Recovered{Ver: 2, Epoch: 1, Unsynced: true}); err != nil {
		t.Fatal(err)
	}
	nt.ring(2, ringmeta.Chain{Members: []string{"a", "b", "c"}, Version: 2})
	nt.settle()
	want := func(id string, ver uint64, marked bool) {
		t.Helper()
		reps := nt.takeReports(id)
		if ver == 0 && len(reps) > 0 {
			t.Fatalf("%s reported %+v, want none", id, reps)
		}
		if ver != 0 && (len(reps) != 1 || reps[0].Kind != RepSynced || reps[0].Ver != ver) {
			t.Fatalf("%s reported %+v, want one synced report at version %d", id, reps, ver)
		}
		if st := nt.lastStored(id); st.Unsynced != marked {
			t.Fatalf("%s stored %+v, want Unsynced=%v", id, st, marked)
		}
	}
	want("c", 2, true)
	want("b", 0, false)

	// The head fails over: c reports again at version 3.
	nt.ring(3, ringmeta.Chain{Members: []string{"b", "c"}, Version: 3})
	nt.settle()
	want("c", 3, true)

	// c restarts on its data at version 3: it reports again.
	nt.nodes["c"] = New(Config{ID: "c", Check: true})
	if err := nt.nodes["c"].Recover(0, Recovered{Ver: 3, Epoch: 3, Unsynced: nt.lastStored("c").Unsynced}); err != nil {
		t.Fatal(err)
	}
	nt.ring(3, ringmeta.Chain{Members: []string{"b", "c"}, Version: 3})
	nt.settle()
	want("c", 3, true)

	// A learner: the ECS adds one only once no mark is left.
	nt.ring(4, ringmeta.Chain{Members: []string{"b", "c"}, Learner: "d", Version: 4})
	nt.settle()
	want("c", 0, false)
	// Nor after the next failover, nor after a restart.
	nt.advance(20 * time.Second) // past every repeat of the earlier reports
	nt.takeReports("c")
	nt.ring(5, ringmeta.Chain{Members: []string{"c"}, Version: 5})
	nt.settle()
	want("c", 0, false)
}

func TestOnlyRemoved(t *testing.T) {
	for _, tc := range []struct {
		name string
		prev []string
		ch   ringmeta.Chain
		want bool
	}{
		{"head removed", []string{"a", "b", "c"}, ringmeta.Chain{Members: []string{"b", "c"}}, true},
		{"middle removed", []string{"a", "b", "c"}, ringmeta.Chain{Members: []string{"a", "c"}}, true},
		{"none removed", []string{"a", "b"}, ringmeta.Chain{Members: []string{"a", "b"}}, true},
		{"learner added", []string{"a", "b"}, ringmeta.Chain{Members: []string{"a", "b"}, Learner: "c"}, false},
		{"reordered", []string{"a", "b", "c"}, ringmeta.Chain{Members: []string{"b", "a", "c"}}, false},
		{"member added", []string{"a", "b"}, ringmeta.Chain{Members: []string{"a", "b", "c"}}, false},
		{"not followed", nil, ringmeta.Chain{Members: []string{"a", "b"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := onlyRemoved(tc.prev, tc.ch); got != tc.want {
				t.Fatalf("onlyRemoved(%v, %+v) = %v, want %v", tc.prev, tc.ch, got, tc.want)
			}
		})
	}
}
