package framework

import (
	"context"
	"sync"
	"sync/atomic"
)

// ForEach calls fn(ctx, i) for i in [0, n) from workers goroutines and
// returns the first error; after an error (or when ctx ends) the remaining
// indexes are not started.
func ForEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, finished atomic.Int64
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
				finished.Add(1)
			}
		}()
	}
	wg.Wait()
	if finished.Load() == int64(n) {
		return nil
	}
	return context.Cause(ctx)
}
