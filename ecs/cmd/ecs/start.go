package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ecskv/ecskv/common/logutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/config/load"
	"github.com/ecskv/ecskv/ecs"
	"github.com/spf13/cobra"
)

func newStartCommand() *cobra.Command {
	d := config.DefaultECS()
	cmd := &cobra.Command{
		Use:   "start [-n N] [--data-dir DIR] [--base-port PORT] [--etcd-endpoints URLS | --etcd-port PORT]",
		Short: "Start etcd (embedded unless --etcd-endpoints), N local kvservers and the controller; runs in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load.ECS(cmd.Flags())
			if err != nil {
				return err
			}
			return runStart(cfg)
		},
	}
	f := cmd.Flags()
	f.String("config", "", "config file (YAML, TOML or JSON)")
	f.IntP("servers", "n", d.Servers, "number of local kvservers to launch")
	f.Int("initial-servers", d.InitialServers, "lay the first ring out once this many servers are active (0: the -n launched, else --replicas)")
	f.String("data-dir", d.DataDir, "directory for embedded etcd and launched servers' data")
	f.String("host", d.Host, "address launched servers and the embedded etcd bind")
	f.Int("base-port", d.BasePort, "first kvserver port (metrics on base-port+1000)")
	f.StringSlice("etcd-endpoints", nil, "use this etcd cluster instead of embedding one")
	f.Int("etcd-port", d.EtcdPort, "embedded etcd client port (peer port is +1)")
	f.Int("replicas", d.Replicas, "replicas per partition (R), fixed at cluster creation")
	f.Int("partitions", d.Partitions, "partitions (P, a power of two), fixed at cluster creation")
	f.String("http", d.HTTP, "status page and /metrics address")
	f.String("kvserver-bin", "", "kvserver binary (default: beside ecs)")
	f.Int("max-key-bytes", d.MaxKeyBytes, "largest key, fixed at cluster creation")
	f.Int("max-value-bytes", d.MaxValueBytes, "largest value, fixed at cluster creation")
	f.Duration("lease-ttl", d.LeaseTTL, "kvserver membership lease TTL")
	f.Duration("ready-timeout", d.ReadyTimeout, "how long to wait for the servers to serve")
	f.String("cluster", d.Cluster, "cluster name (etcd key prefix)")
	f.String("log-level", d.LogLevel, "debug, info, warn or error")
	f.Duration("probe-interval", d.ProbeInterval, "how often the leader probes each server's health")
	f.Duration("probe-timeout", d.ProbeTimeout, "timeout of one health probe")
	f.Int("probe-failures", d.ProbeFailures, "consecutive failed probes that mark a server down")
	f.Int("max-moves", d.MaxMoves, "partition copies (learners) in flight cluster-wide while rebalancing")
	f.Bool("secure", false, "TLS on every link and authentication; creates certificates in --certs-dir (default DATA/certs) when missing")
	f.Bool("auth", false, "users and login tokens (on with --secure); fixed at cluster creation")
	f.Duration("token-ttl", d.TokenTTL, "how long a login token lasts")
	f.Int("dht-base-port", d.DHTBasePort, "serve the VoidPhone DHT API of server sI on dht-base-port+I-1 (0: off)")
	f.Int("resp-base-port", d.RESPBasePort, "serve the Redis protocol of server sI on resp-base-port+I-1 (0: off)")
	load.AddTLSFlags(f, "ecs.crt and ecs.key; servers' <id>.crt", true)
	return cmd
}

func runStart(cfg config.ECS) error {
	lg, err := logutil.New(cfg.LogLevel, "ecs")
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()
	srv, err := ecs.New(cfg, lg, os.Stderr)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	start := time.Now()
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Stop()
	// A controller without servers of its own (-n 0) may be a standby that
	// waits for the leader to go: it waits without a deadline.
	var timeout <-chan time.Time
	if cfg.Servers > 0 || len(cfg.EtcdEndpoints) == 0 {
		timeout = time.After(cfg.ReadyTimeout)
	}
	for ready := false; !ready; {
		select {
		case leader := <-srv.StandbyNotify():
			fmt.Printf("standing by: leader is %s\n", leader)
		case <-srv.ReadyNotify():
			r := srv.ReadyRing()
			fmt.Printf("cluster ready: %d servers, %d partitions, %d replicas, epoch %d, etcd %s, status http://%s%s (%.1fs)\n",
				len(r.Servers), r.Partitions, r.Replicas, r.Epoch, strings.Join(srv.EtcdEndpoints(), ","), cfg.HTTP,
				srv.SecuritySummary(), time.Since(start).Seconds())
			if len(r.Servers) < r.Replicas {
				fmt.Fprintf(os.Stderr, "warning: %d servers for %d replicas: every partition is under-replicated until %d more join (ecs add)\n",
					len(r.Servers), r.Replicas, r.Replicas-len(r.Servers))
			}
			ready = true
		case <-timeout:
			return fmt.Errorf("servers did not all serve within %v (see the server logs above)", cfg.ReadyTimeout)
		case id := <-srv.ChildExited():
			return fmt.Errorf("kvserver %s exited before the cluster was ready (see its log above)", id)
		case <-sig:
			return nil
		case <-srv.StopRequested():
			return nil
		}
	}
	select {
	case <-sig:
	case <-srv.StopRequested():
	}
	fmt.Println("stopping")
	return nil
}
