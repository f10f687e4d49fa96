package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/ecs"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// adminFlags are the flags every admin command takes to find the cluster.
func adminFlags(cmd *cobra.Command) (endpoints *[]string, cluster *string) {
	endpoints = cmd.Flags().StringSlice("etcd-endpoints", []string{config.DefaultEtcdEndpoint}, "etcd endpoints of the cluster")
	cluster = cmd.Flags().String("cluster", config.DefaultCluster, "cluster name")
	return endpoints, cluster
}

func dial(endpoints []string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", endpoints, err)
	}
	return cli, nil
}

func newStatusCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "status [--json]", Short: "Show the cluster's servers and partitions", Args: cobra.NoArgs}
	endpoints, cluster := adminFlags(cmd)
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	cmd.RunE = func(*cobra.Command, []string) error {
		cli, err := dial(*endpoints)
		if err != nil {
			return err
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := ecs.ReadStatus(ctx, cli, *cluster)
		if err != nil {
			return fmt.Errorf("status of %q via %v: %w", *cluster, *endpoints, err)
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		printStatus(st)
		return nil
	}
	return cmd
}

func printStatus(st *ecs.Status) {
	fmt.Printf("cluster %s  epoch %d  partitions %d  replicas %d\n", st.Cluster, st.Epoch, st.Partitions, st.Replicas)
	if st.Leader != "" {
		fmt.Printf("leader: %s\n", st.Leader)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNDER-REPLICATED\tUNAVAILABLE\tLEARNERS\tMOVES IN PROGRESS\tMOVED\tPENDING\tKEYS MOVED\tETA")
	m := st.Moves
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%s\n\n", st.UnderReplicated, st.Unavailable, st.Learners,
		m.InProgress, m.Done, m.Total, m.Pending, m.KeysMoved, eta(m))
	sort.Slice(st.Servers, func(i, j int) bool { return st.Servers[i].ID < st.Servers[j].ID })
	fmt.Fprintln(tw, "ID\tADDRESS\tSTATE\tHEAD\tMIDDLE\tTAIL\tLEARNING\tEPOCH\tPID\tMETRICS")
	for _, s := range st.Servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.ID, s.Address, s.State,
			s.Roles["head"], s.Roles["middle"], s.Roles["tail"], s.Learning, s.Epoch, s.PID, s.Metrics)
	}
	_ = tw.Flush()
}

// eta renders the estimated time left of a rebalancing round.
func eta(m ecs.MoveStatus) string {
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
	endpoints, cluster := adminFlags(cmd)
	wait := cmd.Flags().Duration("timeout", 30*time.Second, "how long to wait for the cluster to stop")
	cmd.RunE = func(*cobra.Command, []string) error {
		cli, err := dial(*endpoints)
		if err != nil {
			return err
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), *wait)
		defer cancel()
		if _, err := cli.Put(ctx, etcdkeys.Stop(*cluster), time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("ask cluster %q to stop via %v: %w", *cluster, *endpoints, err)
		}
		return waitStopped(ctx, cli, *cluster)
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
