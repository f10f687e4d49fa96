package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ecskv/ecskv/common/cliutil"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/spf13/cobra"
)

// defaultMoveTimeout bounds how long add and remove wait for the cluster to
// rebalance.
const defaultMoveTimeout = 10 * time.Minute

func newAddCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add [-n K]",
		Short: "Launch K more local kvservers through the leader ECS and wait until the cluster is balanced",
		Args:  cobra.NoArgs,
	}
	load := adminFlags(cmd)
	count := cmd.Flags().IntP("count", "n", 1, "how many servers to add")
	timeout := cmd.Flags().Duration("timeout", defaultMoveTimeout, "how long to wait for the cluster to rebalance")
	cmd.RunE = func(*cobra.Command, []string) error {
		req := etcdkeys.AdminRequest{Kind: etcdkeys.RequestAdd, Count: *count}
		var ids []string
		st, err := runRequest(load, *timeout, req, func(res etcdkeys.AdminResult) func(*opclient.Status) bool {
			ids = res.Servers
			fmt.Fprintf(os.Stderr, "add: launched %s; waiting for the cluster to rebalance\n", strings.Join(ids, ", "))
			return func(st *opclient.Status) bool {
				for _, id := range ids {
					if i := slices.IndexFunc(st.Servers, func(s opclient.ServerStatus) bool { return s.ID == id }); i < 0 || st.Servers[i].State != "active" {
						return false
					}
				}
				return true
			}
		})
		if err != nil {
			return fmt.Errorf("add: %w", err)
		}
		printBalanced("added "+strings.Join(ids, ", "), st)
		return nil
	}
	return cmd
}

func newRemoveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Move every replica off server ID, take it out of the cluster and stop it if this cluster's ECS launched it",
		Args:  cobra.ExactArgs(1),
	}
	load := adminFlags(cmd)
	timeout := cmd.Flags().Duration("timeout", defaultMoveTimeout, "how long to wait for the server's replicas to move")
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		id := args[0]
		req := etcdkeys.AdminRequest{Kind: etcdkeys.RequestRemove, Server: id}
		st, err := runRequest(load, *timeout, req, func(etcdkeys.AdminResult) func(*opclient.Status) bool {
			fmt.Fprintf(os.Stderr, "remove: draining %s; waiting for its replicas to move\n", id)
			return drained(id)
		})
		if err != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
		printBalanced("removed "+id, st)
		return nil
	}
	return cmd
}

func newReplaceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replace ID NEWID",
		Short: "Launch local server NEWID, wait until it serves, then move every replica off ID and remove it",
		Args:  cobra.ExactArgs(2),
	}
	load := adminFlags(cmd)
	timeout := cmd.Flags().Duration("timeout", defaultMoveTimeout, "how long each step (NEWID joining, ID draining) may take")
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		id, newID := args[0], args[1]
		if err := config.CheckServerID(newID); err != nil {
			return cliutil.UsageError{Err: err}
		}
		add := etcdkeys.AdminRequest{Kind: etcdkeys.RequestAdd, Count: 1, Name: newID}
		if _, err := runRequest(load, *timeout, add, func(etcdkeys.AdminResult) func(*opclient.Status) bool {
			fmt.Fprintf(os.Stderr, "replace: launched %s; waiting for it to join\n", newID)
			return serverState(newID, "active")
		}); err != nil {
			return fmt.Errorf("replace %s by %s: %w", id, newID, err)
		}
		remove := etcdkeys.AdminRequest{Kind: etcdkeys.RequestRemove, Server: id}
		st, err := runRequest(load, *timeout, remove, func(etcdkeys.AdminResult) func(*opclient.Status) bool {
			fmt.Fprintf(os.Stderr, "replace: %s serves; draining %s\n", newID, id)
			return drained(id)
		})
		if err != nil {
			return fmt.Errorf("replace %s by %s: %s joined, but: %w", id, newID, newID, err)
		}
		printBalanced("replaced "+id+" by "+newID, st)
		return nil
	}
	return cmd
}

// drained is the condition remove (and replace's second step) waits for:
// id holds no replica and is out of the ring (gone, removed, or only a
// stopping process's registration).
func drained(id string) func(*opclient.Status) bool {
	return func(st *opclient.Status) bool {
		return !slices.ContainsFunc(st.Servers, func(s opclient.ServerStatus) bool {
			return s.ID == id && s.State != "removed" && s.State != "joining"
		})
	}
}

// serverState is a condition on a status: server id is in state ("":
// not listed at all).
func serverState(id, state string) func(*opclient.Status) bool {
	return func(st *opclient.Status) bool {
		i := slices.IndexFunc(st.Servers, func(s opclient.ServerStatus) bool { return s.ID == id })
		if state == "" {
			return i < 0
		}
		return i >= 0 && st.Servers[i].State == state
	}
}

func newRestartCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restart ID",
		Short: "Relaunch local server ID (one this cluster's ECS launched and that has exited) on its data dir and wait until it serves again",
		Args:  cobra.ExactArgs(1),
	}
	load := adminFlags(cmd)
	timeout := cmd.Flags().Duration("timeout", defaultMoveTimeout, "how long to wait for the server to rejoin and the cluster to rebalance")
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		id := args[0]
		req := etcdkeys.AdminRequest{Kind: etcdkeys.RequestRestart, Server: id}
		st, err := runRequest(load, *timeout, req, func(etcdkeys.AdminResult) func(*opclient.Status) bool {
			fmt.Fprintf(os.Stderr, "restart: relaunched %s; waiting for it to rejoin\n", id)
			return serverState(id, "active")
		})
		if err != nil {
			return fmt.Errorf("restart %s: %w", id, err)
		}
		printBalanced("restarted "+id, st)
		return nil
	}
	return cmd
}

// runRequest submits req, waits for the leader's answer, then waits, with a
// live progress line on stderr, until the condition built from the answer
// holds and the cluster is balanced.
func runRequest(load func() (config.Admin, error), timeout time.Duration, req etcdkeys.AdminRequest,
	until func(etcdkeys.AdminResult) func(*opclient.Status) bool) (*opclient.Status, error) {
	cfg, err := load()
	if err != nil {
		return nil, err
	}
	cluster := cfg.Cluster
	cli, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	id, err := opclient.Submit(ctx, cli, cluster, req)
	if err != nil {
		return nil, err
	}
	res, err := opclient.WaitResult(ctx, cli, cluster, id)
	if err != nil {
		return nil, err
	}
	pl := newProgress(req.Kind, res.Epoch, os.Stderr)
	defer pl.finish()
	st, err := opclient.WaitBalanced(ctx, cli, cluster, until(res), pl.update)
	if err != nil {
		return nil, fmt.Errorf("%w after %v", err, timeout)
	}
	st.Moves = st.Moves.Since(res.Epoch) // not the numbers of an earlier round
	return st, nil
}

// printBalanced is the last line of add, remove, replace and restart:
// what was done, and the cluster it left (servers not removed).
func printBalanced(done string, st *opclient.Status) {
	n := 0
	for _, s := range st.Servers {
		if s.State != "removed" {
			n++
		}
	}
	fmt.Printf("%s: cluster balanced at epoch %d (%d servers, %s)\n", done, st.Epoch, n, st.Moves.Summary(st))
}
