package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/spf13/cobra"
)

// Exit statuses of `ecs check`.
const (
	checkDifferences = 1
	checkError       = 2
)

func newCheckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check [--json]",
		Short: "Compare every partition's replicas (applied sequence and content hash); exit 1 on differences, 2 on error",
		Args:  cobra.NoArgs,
	}
	load := adminFlags(cmd)
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	timeout := cmd.Flags().Duration("timeout", 2*time.Minute, "how long the check may take")
	cmd.RunE = func(*cobra.Command, []string) error {
		rep, err := runCheck(load, *timeout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ecs: check:", err)
			return exitError{code: checkError}
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return exitError{code: checkError}
			}
		} else {
			for _, d := range rep.Differences {
				fmt.Println(d)
			}
			if len(rep.Skipped) > 0 {
				fmt.Printf("check: skipped down servers %s\n", strings.Join(rep.Skipped, ", "))
			}
			fmt.Printf("check: %d partitions, %d servers, %d differences\n", rep.Partitions, rep.Servers, len(rep.Differences))
		}
		if len(rep.Differences) > 0 {
			return exitError{code: checkDifferences}
		}
		return nil
	}
	return cmd
}

func runCheck(load func() (config.Admin, error), timeout time.Duration) (*opclient.CheckReport, error) {
	cfg, err := load()
	if err != nil {
		return nil, err
	}
	// Digests are for cluster members: the ECS's certificate.
	creds, err := tlsutil.DialOption(cfg.Files(tlsutil.ECSName))
	if err != nil {
		return nil, err
	}
	cli, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rep, err := opclient.Check(ctx, cli, cfg.Cluster, opclient.CheckOptions{Dial: opclient.AdminDialerWith(creds)})
	return rep, err
}
