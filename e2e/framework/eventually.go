package framework

import (
	"context"
	"testing"
	"time"
)

// Eventually calls cond every interval, in the caller's goroutine, until it
// returns true, and fails the test with msg (formatted with args) when it has
// not within timeout. cond is called at least once.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if !poll(ctx, interval, cond) {
		t.Fatalf("framework: not true within %v: "+msg, append([]any{timeout}, args...)...)
	}
}

// poll calls cond every interval until it returns true (true) or ctx ends
// (false). cond is called at least once.
func poll(ctx context.Context, interval time.Duration, cond func() bool) bool {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
}

// WaitUntil is Eventually without failing: it reports whether cond returned
// true within timeout, so the caller can describe the failure itself.
func WaitUntil(timeout, interval time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return poll(ctx, interval, cond)
}
