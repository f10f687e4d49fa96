// Command kvserver runs one ecskv storage server.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/ecskv/ecskv/common/cliutil"
	"github.com/ecskv/ecskv/common/logutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/config/load"
	"github.com/ecskv/ecskv/kvserver"
	"github.com/spf13/cobra"
)

func main() {
	// A server's live heap is small (pebble keeps its block cache off the
	// Go heap) and it allocates on every write, so Go's default GOGC=100
	// collects several times a second; 400 took about 6% off the CPU per
	// write (make bench-peers' W, paired runs). GOGC set in the
	// environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	cmd := newCommand()
	cliutil.Setup(cmd)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kvserver:", err)
		os.Exit(2)
	}
}

func newCommand() *cobra.Command {
	d := config.DefaultKVServer()
	cmd := &cobra.Command{
		Use:           "kvserver --id ID --listen ADDR --data-dir DIR [--etcd-endpoints URLS]",
		Short:         "Run one ecskv storage server",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load.KVServer(cmd.Flags())
			if err != nil {
				return err
			}
			return run(cfg)
		},
	}
	f := cmd.Flags()
	f.String("config", "", "config file (YAML, TOML or JSON)")
	f.String("id", "", "server id, unique and stable across restarts")
	f.String("listen", "", "gRPC listen address host:port")
	f.String("advertise", "", "address other parts dial (default: --listen)")
	f.String("metrics", "", "address of the /metrics endpoint (empty: off)")
	f.String("data-dir", "", "pebble data directory")
	f.String("zone", "", "failure domain for placement; clients in it read from this server in nearest mode")
	f.String("coords", "", "`X,Y` (any number of coordinates): the server's place for clients' nearest reads")
	f.String("cluster", d.Cluster, "cluster name (etcd key prefix)")
	f.StringSlice("etcd-endpoints", d.EtcdEndpoints, "etcd endpoints")
	f.Duration("lease-ttl", d.LeaseTTL, "membership lease TTL")
	f.Bool("sync", d.Sync, "fsync every write batch")
	f.Int("cache-entries", d.CacheEntries, "LRU cache entries (0 disables)")
	f.Int64("cache-bytes", d.CacheBytes, "LRU cache byte budget")
	f.Bool("lean-log", d.LeanLog, "log a single put without its value, which its data record holds; --lean-log=false writes data an older version can open")
	f.Duration("sync-delay", d.SyncDelay, "hold a WAL sync back this long while the server is busy (the sync before it covered several steps), so more writes share one fsync; 0 = never")
	f.Bool("raw-wal-sync", d.RawWALSync, "sync and write the WAL with raw system calls that keep their Go processor (fewer context switches per write); --raw-wal-sync=false goes through the Go runtime")
	f.String("log-level", d.LogLevel, "debug, info, warn or error")
	f.Int64("transfer-rate", d.TransferRate, "bytes/s sent to learners (0: no cap)")
	f.Bool("pprof", d.Pprof, "serve /debug/pprof on the metrics address")
	f.Bool("reflection", d.Reflection, "serve gRPC server reflection (grpcurl list); --reflection=false turns it off")
	f.Int("max-connections", d.MaxConnections, "connections that have made a call, at once (0: no bound)")
	f.Uint32("max-streams", d.MaxStreams, "concurrent calls per connection")
	f.Int("max-pending-connections", d.MaxPendingConnections, "connections that have not made a call yet, at once (0: no bound)")
	f.Duration("handshake-timeout", d.HandshakeTimeout, "close a connection whose TLS and HTTP/2 handshake takes longer")
	f.Duration("first-request-timeout", d.FirstRequestTimeout, "close a connection that makes no call within this time")
	f.Duration("idle-timeout", d.IdleTimeout, "close a connection without a call in progress for this long (0: never)")
	f.Int("max-batch-inflight", d.MaxBatchInflight, "puts and deletes of one Batch stream in flight at once")
	f.Int("max-batch-queued-bytes", d.MaxBatchQueuedBytes, "answer bytes one Batch stream holds for its client before it stops reading")
	f.Duration("batch-stall-timeout", d.BatchStallTimeout, "close a Batch stream whose client reads no answer for this long at --max-batch-queued-bytes")
	f.Int("scan-max-page-keys", d.ScanMaxPageKeys, "keys of one Scan page at most")
	f.Int("scan-max-page-bytes", d.ScanMaxPageBytes, "key and value bytes of one Scan page at most (a page holds at least one key)")
	f.Float64("rate-limit", d.RateLimit, "key operations per second per user (0: no limit)")
	f.Int("rate-burst", d.RateBurst, "burst above --rate-limit")
	f.Int("max-message-bytes", d.MaxMessageBytes, "largest gRPC message (at least the cluster's max key and value sizes + 5 MiB)")
	f.Bool("forward", d.Forward, "forward a request for a key this server does not serve to the server that does (--forward=false: refuse it)")
	f.Int("max-forwards", d.MaxForwards, "requests forwarded at once")
	f.String("dht-listen", "", "address of the VoidPhone DHT API, plain TCP (empty: off)")
	f.Bool("dht-allow-insecure", d.DHTAllowInsecure, "serve the plaintext, unauthenticated DHT API on a server with TLS")
	f.Int("dht-max-connections", d.DHTMaxConnections, "open DHT API connections at once (0: no bound)")
	f.Int("dht-max-inflight", d.DHTMaxInflight, "pipelined requests of one DHT API connection in flight at once")
	f.Duration("dht-idle-timeout", d.DHTIdleTimeout, "close a DHT API connection that sends nothing or reads no answer for this long (0: never)")
	f.String("resp-listen", "", "address of the Redis protocol front door, plain TCP (empty: off)")
	f.Bool("resp-allow-insecure", d.RESPAllowInsecure, "serve the plaintext Redis protocol (passwords in the clear) on a server with TLS")
	f.Int("resp-max-connections", d.RESPMaxConnections, "open Redis protocol connections at once (0: no bound)")
	f.Duration("resp-idle-timeout", d.RESPIdleTimeout, "close a Redis protocol connection that sends nothing or reads no answer for this long (0: never)")
	load.AddTLSFlags(f, "<id>.crt and <id>.key", true)
	return cmd
}

func run(cfg config.KVServer) error {
	lg, err := logutil.New(cfg.LogLevel, "kvserver")
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()
	srv, err := kvserver.New(cfg, lg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case err = <-srv.Fatal():
	}
	srv.Stop()
	return err
}
