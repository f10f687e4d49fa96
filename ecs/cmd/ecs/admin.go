package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/config/load"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// adminFlags adds the flags every admin command takes to find the cluster
// and returns the loader of its configuration (flags, ECSKV_* variables,
// --config file).
func adminFlags(cmd *cobra.Command) func() (config.Admin, error) {
	d := config.DefaultAdmin()
	f := cmd.Flags()
	f.StringSlice("etcd-endpoints", d.EtcdEndpoints, "etcd endpoints of the cluster")
	f.String("cluster", d.Cluster, "cluster name")
	load.AddTLSFlags(f, "ecs.crt and ecs.key", true)
	f.String(load.ConfigFlag, "", "config file (YAML, TOML or JSON)")
	return func() (config.Admin, error) { return load.Admin(f) }
}

// withEtcd loads the admin configuration, dials etcd and runs f within
// timeout.
func withEtcd(load func() (config.Admin, error), timeout time.Duration,
	f func(context.Context, *clientv3.Client, config.Admin) error) error {
	cfg, err := load()
	if err != nil {
		return err
	}
	cli, err := dial(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return f(ctx, cli, cfg)
}

func newStatusCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "status [--json]", Short: "Show the cluster's servers and partitions", Args: cobra.NoArgs}
	load := adminFlags(cmd)
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	timeout := cmd.Flags().Duration("timeout", 5*time.Second, "how long reading the status may take")
	cmd.RunE = func(*cobra.Command, []string) error {
		return withEtcd(load, *timeout, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
			st, err := opclient.ReadStatus(ctx, cli, cfg.Cluster)
			if err != nil {
				return fmt.Errorf("status of %q via %v: %w", cfg.Cluster, cfg.EtcdEndpoints, err)
			}
			if *asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(st)
			return nil
		})
	}
	return cmd
}

func printStatus(st *opclient.Status) {
	auth := ""
	if st.Auth {
		auth = "  authentication on"
	}
	fmt.Printf("cluster %s  epoch %d  partitions %d  replicas %d%s\n", st.Cluster, st.Epoch, st.Partitions, st.Replicas, auth)
	if st.Leader != "" {
		fmt.Printf("leader: %s\n", st.Leader)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNDER-REPLICATED\tUNAVAILABLE\tLEARNERS\tMOVES IN PROGRESS\tMOVED\tPENDING\tKEYS MOVED\tCOPIED\tETA")
	m := st.Moves
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%s\t%s\n\n", st.UnderReplicated, st.Unavailable, st.Learners,
		m.InProgress, m.Done, m.Total, m.Pending, m.KeysMoved, humanize.Bytes(m.CopiedBytes), eta(m))
	fmt.Fprintln(tw, "ID\tADDRESS\tZONE\tSTATE\tHEAD\tMIDDLE\tTAIL\tLEARNING\tBEHIND\tPID\tMETRICS")
	for _, s := range st.Servers {
		behind, pid := "-", "-" // a server that is not registered reports nothing
		if s.PID != 0 {
			behind, pid = fmt.Sprintf("%d epochs", s.Lag), strconv.Itoa(s.PID)
		}
		zone := cmp.Or(s.Zone, "-")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.ID, s.Address, zone, s.State,
			s.Roles["head"], s.Roles["middle"], s.Roles["tail"], s.Learning, behind, pid, s.Metrics)
	}
	_ = tw.Flush()
}

// eta renders the estimated time left of a rebalancing round.
func eta(m opclient.MoveStatus) string {
	switch {
	case m.Pending == 0:
		return "-"
	case m.ETASeconds < 0:
		return "unknown"
	}
	return (time.Duration(m.ETASeconds * float64(time.Second))).Round(100 * time.Millisecond).String()
}

func newStopCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "stop", Short: "Stop a running cluster (its ecs and every server it launched)", Args: cobra.NoArgs}
	load := adminFlags(cmd)
	wait := cmd.Flags().Duration("timeout", 30*time.Second, "how long to wait for the cluster to stop")
	cmd.RunE = func(*cobra.Command, []string) error {
		return withEtcd(load, *wait, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
			if _, err := cli.Put(ctx, etcdkeys.Stop(cfg.Cluster), time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
				return fmt.Errorf("ask cluster %q to stop via %v: %w", cfg.Cluster, cfg.EtcdEndpoints, err)
			}
			start := time.Now()
			if err := waitStopped(ctx, cli, cfg.Cluster); err != nil {
				return err
			}
			fmt.Printf("stopped cluster %s (%.1fs)\n", cfg.Cluster, time.Since(start).Seconds())
			return nil
		})
	}
	return cmd
}

// waitStopped returns once no ECS leads and no server is registered, or etcd
// itself went away (the embedded etcd stops with its ECS).
func waitStopped(ctx context.Context, cli *clientv3.Client, cluster string) error {
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		lr, err1 := cli.Get(actx, etcdkeys.LeaderPrefix(cluster), clientv3.WithPrefix(), clientv3.WithCountOnly())
		sr, err2 := cli.Get(actx, etcdkeys.ServersPrefix(cluster), clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err1 != nil || err2 != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("cluster %q did not stop in time", cluster)
			}
			return nil // etcd is gone: it was the embedded one
		}
		if lr.Count == 0 && sr.Count == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %q did not stop in time (%d ecs, %d servers left)", cluster, lr.Count, sr.Count)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
