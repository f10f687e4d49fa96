package kvserver

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// TestGoAttachRefusesOnceStopping: Stop joins every goroutine goAttach
// started, and nothing starts once Stop has begun, timers included.
func TestGoAttachRefusesOnceStopping(t *testing.T) {
	cfg := config.DefaultKVServer()
	cfg.ID, cfg.Listen, cfg.DataDir, cfg.EtcdEndpoints = "s1", testutil.FreeAddr(t), t.TempDir(), testEtcdEndpoints
	s, err := New(cfg, zap.NewNop())
	require.NoError(t, err)

	var ran, timed atomic.Int32
	release := make(chan struct{})
	require.True(t, s.goAttach(func() { <-release; ran.Add(1) }))
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool {
		select {
		case <-s.stopc:
			return true
		default:
			return false
		}
	}, "Stop began")
	select {
	case <-stopped:
		t.Fatal("Stop returned before a tracked goroutine ended")
	default:
	}
	require.False(t, s.goAttach(func() { ran.Add(1) }), "started after Stop began")
	s.afterFunc(time.Millisecond, func() { timed.Add(1) })
	close(release)
	<-stopped
	time.Sleep(100 * time.Millisecond) // well past the timer
	require.Equal(t, int32(1), ran.Load())
	require.Zero(t, timed.Load(), "a timer that fired after Stop began ran its callback")
}
