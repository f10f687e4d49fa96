package chainsm

import "testing"

func TestExpiryVerdict(t *testing.T) {
	for _, c := range []struct {
		now, exp, skew int64
		live, expired  bool
	}{
		{now: 5, exp: 0, skew: 50, live: true},
		{now: 999, exp: 1000, skew: 50, live: true},
		{now: 1000, exp: 1000, skew: 50},
		{now: 1099, exp: 1000, skew: 50},
		{now: 1100, exp: 1000, skew: 50, expired: true},
		{now: 1000, exp: 1000, skew: 0, expired: true},
	} {
		live, expired := ExpiryVerdict(c.now, c.exp, c.skew)
		if live != c.live || expired != c.expired {
			t.Errorf("ExpiryVerdict(%d, %d, %d) = %v, %v; want %v, %v", c.now, c.exp, c.skew, live, expired, c.live, c.expired)
		}
	}
}

// Two servers whose clocks are within skew of true time never see a record
// expired at one true time and live at a later one.
func TestExpiryVerdictMonotonic(t *testing.T) {
	const skew, exp = 50, 10_000
	for offA := int64(-skew); offA <= skew; offA += 7 {
		for offB := int64(-skew); offB <= skew; offB += 7 {
			for t1 := int64(exp - 200); t1 < exp+200; t1 += 3 {
				if _, expired := ExpiryVerdict(t1+offA, exp, skew); !expired {
					continue
				}
				for t2 := t1; t2 < exp+200; t2 += 3 {
					if live, _ := ExpiryVerdict(t2+offB, exp, skew); live {
						t.Fatalf("expired at %d (offset %d), live at %d (offset %d)", t1, offA, t2, offB)
					}
				}
			}
		}
	}
}
