package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/ecs/backup"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newBackupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup DIR",
		Short: "Write a backup of every partition (each at one committed seq, read from its tail) into DIR, then verify it",
		Long: "Write a backup of every partition into DIR: one file per partition, streamed from the partition's tail\n" +
			"at one committed seq while writes go on, and manifest.json; then re-read the files against the manifest.\n" +
			"With --verify, only check an existing backup. On a secure cluster it needs a member's certificate.",
		Args: cobra.ExactArgs(1),
	}
	load := adminFlags(cmd)
	verifyOnly := cmd.Flags().Bool("verify", false, "only verify the backup in DIR (checksums, record counts)")
	parallel := cmd.Flags().Int("parallel", 4, "partitions streamed at once")
	timeout := cmd.Flags().Duration("timeout", time.Hour, "how long the backup may take")
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		dir := args[0]
		if *verifyOnly {
			return verifyBackup(dir)
		}
		return withMember(load, *timeout, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin, dial opclient.AdminDialer) error {
			start := time.Now()
			bar := newTransferBar("backup", os.Stdout)
			m, err := backup.Backup(ctx, cli, cfg.Cluster, dir, backup.Options{Dial: dial, Parallel: *parallel, Progress: bar.update})
			bar.finish()
			if err != nil {
				return fmt.Errorf("backup of %q: %w", cfg.Cluster, err)
			}
			took := time.Since(start)
			fmt.Printf("backup of %s: %d partitions, %s keys, %s in %.1fs (%s/s) into %s\n", m.Cluster, m.Partitions,
				humanize.Comma(m.Records), humanize.IBytes(uint64(m.Bytes)), took.Seconds(), rate(m.Bytes, took), dir)
			return verifyBackup(dir)
		})
	}
	return cmd
}

func newRestoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore DIR",
		Short: "Load the backup in DIR into an empty cluster (any number of servers, any P)",
		Long: "Verify the backup in DIR, then write every record, with its namespace and absolute expiry, through the\n" +
			"head of the partition the target's ring routes it to. Refuses a cluster that holds keys (unless --force),\n" +
			"one with smaller limits, and one whose authentication setting differs (unless --force). Restores the\n" +
			"user records a namespace belongs to. On a secure cluster it needs a member's certificate.",
		Args: cobra.ExactArgs(1),
	}
	load := adminFlags(cmd)
	force := cmd.Flags().Bool("force", false, "load into a cluster that holds keys, or whose authentication setting differs")
	parallel := cmd.Flags().Int("parallel", 4, "files loaded at once")
	timeout := cmd.Flags().Duration("timeout", time.Hour, "how long the restore may take")
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		return withMember(load, *timeout, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin, dial opclient.AdminDialer) error {
			bar := newTransferBar("restore", os.Stdout)
			rep, err := backup.Restore(ctx, cli, cfg.Cluster, args[0], backup.Options{Dial: dial, Parallel: *parallel, Force: *force, Progress: bar.update})
			bar.finish()
			if err != nil {
				return fmt.Errorf("restore into %q: %w", cfg.Cluster, err)
			}
			for _, k := range rep.Conflicts {
				fmt.Printf("restore: kept the cluster's own %s (the backup's differs)\n", k)
			}
			fmt.Printf("restore into %s: %s keys (%s expired, left out), %s read in %.1fs (%s/s), from backup of %s\n", cfg.Cluster,
				humanize.Comma(rep.Records), humanize.Comma(rep.Expired), humanize.IBytes(uint64(rep.Bytes)),
				rep.Duration.Seconds(), rate(rep.Bytes, rep.Duration), rep.Manifest.Cluster)
			return nil
		})
	}
	return cmd
}

// verifyBackup runs the verify step and prints its verdict.
func verifyBackup(dir string) error {
	m, err := backup.Verify(dir, nil)
	if err != nil {
		return fmt.Errorf("verify %s: %w", dir, err)
	}
	fmt.Printf("verified %s: %d files, %s keys, %s, checksums match\n", dir, len(m.Files), humanize.Comma(m.Records), humanize.IBytes(uint64(m.Bytes)))
	return nil
}

// withMember is withEtcd for commands that also call the servers' Admin
// service, with the member certificate (the ECS's) on a secure cluster.
func withMember(load func() (config.Admin, error), timeout time.Duration,
	f func(context.Context, *clientv3.Client, config.Admin, opclient.AdminDialer) error) error {
	return withEtcd(load, timeout, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
		creds, err := tlsutil.DialOption(cfg.Files(tlsutil.ECSName))
		if err != nil {
			return err
		}
		return f(ctx, cli, cfg, opclient.AdminDialerWith(creds))
	})
}

func rate(bytes int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return humanize.IBytes(uint64(float64(bytes) / d.Seconds()))
}
