package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// workload is a YCSB-style mix: the share of reads, the rest updates.
type workload struct {
	name      string
	readShare float64
}

var workloads = map[string]workload{
	"a": {"A (50% read, 50% update)", 0.50},
	"b": {"B (95% read, 5% update)", 0.95},
	"c": {"C (read only)", 1.00},
	"w": {"W (write only)", 0.00},
}

func parseWorkload(s string) (workload, error) {
	w, ok := workloads[s]
	if !ok {
		return workload{}, fmt.Errorf("unknown --workload %q: want a, b, c or w", s)
	}
	return w, nil
}

// keyChooser draws key indexes, uniform or zipfian (YCSB's constant 0.99).
type keyChooser struct {
	n    uint64
	zipf *rand.Zipf
	rng  *rand.Rand
}

func newKeyChooser(n int, dist string, seed uint64) (*keyChooser, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	kc := &keyChooser{n: uint64(n), rng: rng}
	switch dist {
	case "uniform":
	case "zipfian":
		// rand.Zipf needs s > 1; 1.01 is the closest to YCSB's skew.
		kc.zipf = rand.NewZipf(rng, 1.01, 1, uint64(n-1))
	default:
		return nil, fmt.Errorf("unknown --distribution %q: want zipfian or uniform", dist)
	}
	return kc, nil
}

func (kc *keyChooser) next() uint64 {
	if kc.zipf != nil {
		// Scatter the hot ranks over the key space so hot keys do not all
		// fall into one partition.
		return (kc.zipf.Uint64() * 0x9e3779b97f4a7c15) % kc.n
	}
	return kc.rng.Uint64N(kc.n)
}

func keyName(i uint64) string { return "user" + strconv.FormatUint(i, 10) }
