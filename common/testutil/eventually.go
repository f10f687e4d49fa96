package testutil

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Eventually calls cond every interval until it returns true, and fails the
// test with t.Fatalf when it has not within timeout. cond runs in the
// caller's goroutine, so it may use require; it is called at least once, and
// once more at the deadline. msgAndArgs, as in testify, is an optional
// format string and its arguments saying what was awaited.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	if !WaitUntil(timeout, interval, cond) {
		t.Fatalf("not true within %v: %s", timeout, message(msgAndArgs))
	}
}

// WaitUntil is Eventually without failing: it reports whether cond returned
// true within timeout, so the caller can describe the failure itself.
func WaitUntil(timeout, interval time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
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

// message formats testify-style msgAndArgs.
func message(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return "condition not met"
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return fmt.Sprint(msgAndArgs...)
}
