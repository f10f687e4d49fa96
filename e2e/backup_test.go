//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/ecs/backup"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
)

// backupKeys is the keys TestBackupRestore loads by default;
// ECSKV_E2E_BACKUP_KEYS sets another number (100000 for the README's
// figures).
const backupKeys = 10000

const (
	backupTTL      = time.Hour       // every tenth key's
	backupShortTTL = 2 * time.Second // every fiftieth key's: gone by the restore
	backupValue    = 200             // bytes per value
	backupTimeout  = 5 * time.Minute // of one ecs backup or restore
)

// TestBackupRestore loads keys into two users' namespaces of a 3-server
// cluster, some with TTLs, runs `ecs backup` while a writer overwrites
// some of them and adds others, restores the backup into a fresh 5-server
// cluster with another P, and checks every key not written during the
// backup: its value, its absolute expiry (read back by a backup of the
// restored cluster) and, for the short TTLs, that it is gone. `ecs check`
// must be clean, and a second restore is refused.
func TestBackupRestore(t *testing.T) {
	n := backupKeys
	if s := os.Getenv("ECSKV_E2E_BACKUP_KEYS"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err, "ECSKV_E2E_BACKUP_KEYS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	users := []string{"alice", "bob"}
	src := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3),
		framework.WithPartitions(64), framework.WithArgs("--auth"))
	dst := framework.NewCluster(t, framework.WithServers(5), framework.WithReplicas(3),
		framework.WithPartitions(128), framework.WithArgs("--auth"))
	for _, u := range users {
		addUser(t, src, u)
	}
	clients := map[string]*kvclient.Client{}
	for _, u := range users {
		clients[u] = userClient(ctx, t, src, u)
	}
	d := dataset{prefix: "bk", n: n, size: backupValue}
	owner := func(i int) string { return users[i%2] }
	ttl := func(i int) time.Duration {
		switch {
		case i%50 == 7:
			return backupShortTTL
		case i%10 == 1:
			return backupTTL
		}
		return 0
	}
	churned := func(i int) bool { return i%20 == 3 } // overwritten during the backup
	began := time.Now()
	require.NoError(t, framework.ForEach(ctx, n, 64, func(ctx context.Context, i int) error {
		var opts []kvclient.OpOption
		if ttl(i) > 0 {
			opts = append(opts, kvclient.WithTTL(ttl(i)))
		}
		_, err := clients[owner(i)].Put(ctx, d.key(i), d.value(i), opts...)
		return err
	}))
	loaded := time.Now()
	t.Logf("loaded %d keys in %v", n, loaded.Sub(began).Round(time.Millisecond))

	// A writer overwrites the churned keys and adds new ones all along.
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := 0; ; j++ {
			select {
			case <-stop:
				return
			default:
			}
			i := (j*20 + 3) % n
			key := d.key(i)
			if j%2 == 1 {
				key = fmt.Sprintf("new%07d", j)
			}
			if _, err := clients[owner(i)].Put(ctx, key, []byte(fmt.Sprintf("during-%d", j))); err == nil {
				writes.Add(1)
			}
		}
	}()
	dir := filepath.Join(framework.TempDir(t, "backup"), "b1")
	took := runBackupCmd(t, src, "backup", dir)
	close(stop)
	wg.Wait()
	m, err := backup.ReadManifest(dir)
	require.NoError(t, err)
	t.Logf("backup: %d keys, %.1f MiB in %v: %.1f MiB/s (%d writes went on meanwhile)", m.Records,
		mib(m.Bytes), took.Round(time.Millisecond), mib(m.Bytes)/took.Seconds(), writes.Load())
	require.Equal(t, 64, m.Partitions)
	require.Len(t, m.Files, 64)

	// --verify alone, and a flipped byte caught with the file's name.
	require.Equal(t, 0, src.Admin(t, "backup", "--verify", dir).ExitCode)
	bad := filepath.Join(framework.TempDir(t, "backup"), "bad")
	copyDir(t, dir, bad)
	flipFileByte(t, filepath.Join(bad, backup.FileName(5)))
	res := src.Admin(t, "backup", "--verify", bad)
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stderr, backup.FileName(5)+": checksum mismatch")

	time.Sleep(time.Until(loaded.Add(backupShortTTL))) // every short TTL is over
	took = runBackupCmd(t, dst, "restore", dir)
	t.Logf("restore into 5 servers, 128 partitions: %d keys, %.1f MiB in %v: %.1f MiB/s", m.Records,
		mib(m.Bytes), took.Round(time.Millisecond), mib(m.Bytes)/took.Seconds())
	restored := time.Now()

	// Values, read as the users (restore carried their records over).
	for _, u := range users {
		cli := userClient(ctx, t, dst, u)
		var keys []string
		var idx []int
		for i := range n {
			if owner(i) == u && !churned(i) {
				keys, idx = append(keys, d.key(i)), append(idx, i)
			}
		}
		for j, r := range cli.MGet(ctx, keys) {
			i := idx[j]
			if ttl(i) == backupShortTTL {
				require.ErrorIs(t, r.Err, kvclient.ErrNotFound, "%s's %s: its TTL is over", u, r.Key)
				continue
			}
			require.NoError(t, r.Err, "%s's %s", u, r.Key)
			require.Equal(t, string(d.value(i)), string(r.Value), "%s's %s", u, r.Key)
		}
	}
	// Expiries, as the restored cluster holds them.
	dir2 := filepath.Join(framework.TempDir(t, "backup"), "b2")
	runBackupCmd(t, dst, "backup", dir2)
	expiries := readExpiries(t, dir2)
	for i := range n {
		if churned(i) || ttl(i) == backupShortTTL {
			continue
		}
		exp, ok := expiries[d.key(i)]
		require.True(t, ok, "%s missing from the restored cluster", d.key(i))
		if ttl(i) == 0 {
			require.Zero(t, exp, "%s has no TTL", d.key(i))
			continue
		}
		left := time.Until(time.UnixMilli(exp))
		// Put between began and loaded: the remaining TTL is what is left
		// of the hour since then, give or take clock steps.
		require.True(t, left <= backupTTL-time.Since(loaded)+time.Second && left >= backupTTL-time.Since(began)-time.Second,
			"%s: %v left of %v, %v after its put", d.key(i), left, backupTTL, restored.Sub(began))
	}
	chk := dst.Check(t)
	require.Equal(t, 0, chk.ExitCode, "ecs check after restore: %s", chk.Stderr)
	res = dst.Admin(t, "restore", dir)
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stderr, "holds keys")
}

func userClient(ctx context.Context, t *testing.T, c *framework.Cluster, u string) *kvclient.Client {
	t.Helper()
	cli, err := kvclient.New(ctx, c.ClientConfig(), kvclient.WithCredentials(u, u+"-pw"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// runBackupCmd runs `ecs backup|restore DIR` against c and returns how
// long it took.
func runBackupCmd(t *testing.T, c *framework.Cluster, cmd, dir string) time.Duration {
	t.Helper()
	start := time.Now()
	res := framework.Run(t, framework.RunOptions{Timeout: backupTimeout}, c.Bin(framework.ECSBin),
		append([]string{cmd, dir, "--etcd-endpoints", c.EtcdEndpoint()}, c.AdminTLS()...)...)
	require.Equal(t, 0, res.ExitCode, "ecs %s: %s", cmd, res.Stderr)
	return time.Since(start)
}

// readExpiries maps every key of the backup in dir to its expiry.
func readExpiries(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	m, err := backup.Verify(dir, nil)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, f := range m.Files {
		_, err := backup.ReadFile(filepath.Join(dir, f.File), m.FileLimits(), func(r backup.Record) error {
			out[string(r.Key)] = r.ExpiryMs
			return nil
		})
		require.NoError(t, err)
	}
	return out
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.CopyFS(to, os.DirFS(from)))
}

func flipFileByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x01
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// TestBackupRestoreSecure: on secure clusters, backup and restore reach
// the member-only Admin service with the member certificate, and a user's
// keys come back readable by that user on another cluster with its own CA.
func TestBackupRestoreSecure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := framework.NewCluster(t, framework.WithSecure(), framework.WithServers(3), framework.WithReplicas(3))
	dst := framework.NewCluster(t, framework.WithSecure(), framework.WithServers(1), framework.WithReplicas(1))
	addUser(t, src, "alice")
	d := dataset{prefix: "sec", n: 300}
	putAll(ctx, t, userClient(ctx, t, src, "alice"), d, 16)
	dir := filepath.Join(framework.TempDir(t, "backup"), "b")
	runBackupCmd(t, src, "backup", dir)
	runBackupCmd(t, dst, "restore", dir)
	cli := userClient(ctx, t, dst, "alice")
	for i, r := range cli.MGet(ctx, keysOf(d)) {
		require.NoError(t, r.Err, r.Key)
		require.Equal(t, string(d.value(i)), string(r.Value), r.Key)
	}
	require.Equal(t, 0, dst.Check(t).ExitCode)
}

func keysOf(d dataset) []string {
	keys := make([]string, d.n)
	for i := range keys {
		keys[i] = d.key(i)
	}
	return keys
}
