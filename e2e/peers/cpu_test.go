package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSumFields(t *testing.T) {
	f := filepath.Join(t.TempDir(), "status")
	body := "Name:\tkvserver\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\nThreads:\t9\n"
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := sumFields(f, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"); n != 127 {
		t.Fatalf("sum %d, want 127", n)
	}
	if n := sumFields(filepath.Join(t.TempDir(), "gone"), "syscr"); n != 0 {
		t.Fatalf("missing file summed to %d", n)
	}
}

// TestReadSwitchesCountsThreads: a thread that sleeps switches out, and
// the count of the process includes it.
func TestReadSwitchesCountsThreads(t *testing.T) {
	pid := os.Getpid()
	before := readSwitches(pid)
	for range 20 {
		time.Sleep(time.Millisecond)
	}
	if after := readSwitches(pid); after <= before {
		t.Fatalf("context switches %d then %d after sleeping", before, after)
	}
}
