package launcher

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// TestLauncherKeepsLastOutput: a server that dies has its last lines
// forwarded before its exit is reported, and Stop joins its watcher.
func TestLauncherKeepsLastOutput(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kvserver")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho starting\necho 'last words' >&2\nexit 3\n"), 0o755))
	cfg := config.DefaultECS()
	cfg.DataDir, cfg.KVServerBin, cfg.Servers = t.TempDir(), bin, 1
	var out bytes.Buffer
	l, err := New(cfg, config.TLS{}, 0, zaptest.NewLogger(t), &out)
	require.NoError(t, err)
	require.NoError(t, l.Start([]string{"127.0.0.1:1"}))
	select {
	case id := <-l.Exited():
		require.Equal(t, "s1", id)
	case <-time.After(10 * time.Second):
		t.Fatal("exit not reported")
	}
	// stdout and stderr are copied side by side: either order.
	require.ElementsMatch(t, []string{"[s1] starting", "[s1] last words"}, strings.Split(strings.TrimSpace(out.String()), "\n"))
	l.Stop(time.Second)
}
