package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

// userTimeout is the default bound on one user command's etcd requests.
const userTimeout = 10 * time.Second

// timeoutFlag adds --timeout to cmd.
func timeoutFlag(cmd *cobra.Command, def time.Duration, what string) *time.Duration {
	return cmd.Flags().Duration("timeout", def, what)
}

func newUserCommand() *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manage the users of a cluster with authentication"}
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user; the password is asked for twice without echo, or read from standard input's first line",
		Args:  cobra.ExactArgs(1),
	}
	loadAdd := adminFlags(add)
	timeoutAdd := timeoutFlag(add, userTimeout, "how long the command may take")
	add.RunE = func(_ *cobra.Command, args []string) error {
		if err := auth.CheckUser(args[0]); err != nil {
			return err
		}
		pw, err := newPassword(os.Stdin, os.Stderr)
		if err != nil {
			return err
		}
		u, err := auth.NewUser(args[0], pw, bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		return withEtcd(loadAdd, *timeoutAdd, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
			stored, err := opclient.AddUser(ctx, cli, cfg.Cluster, u)
			if err != nil {
				return err
			}
			if stored.ID != u.ID {
				fmt.Printf("added user %s with the keys kept at their removal\n", u.Name)
			} else {
				fmt.Printf("added user %s\n", u.Name)
			}
			if on, known := opclient.AuthEnabled(ctx, cli, cfg.Cluster); known && !on {
				fmt.Fprintf(os.Stderr, "note: cluster %q has authentication off; users matter only on a cluster created with --secure or --auth\n", cfg.Cluster)
			}
			return nil
		})
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user and delete their keys; servers refuse their tokens within moments",
		Long: `Remove a user: servers refuse their tokens within moments, and delete
their keys on every replica in the background (a user added later under
the same name starts empty).

With --keep-data the keys stay, and the next "ecs user add NAME" gives them
back to the new user (to change a password, or to suspend an account);
until then nobody can read them. "ecs user remove NAME" without the flag
then deletes them.`,
		Args: cobra.ExactArgs(1),
	}
	loadRemove := adminFlags(remove)
	timeoutRemove := timeoutFlag(remove, userTimeout, "how long the command may take")
	keep := remove.Flags().Bool("keep-data", false, "keep the user's keys for the next user added under this name")
	remove.RunE = func(_ *cobra.Command, args []string) error {
		return withEtcd(loadRemove, *timeoutRemove, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
			r, err := opclient.RemoveUser(ctx, cli, cfg.Cluster, args[0], *keep)
			switch {
			case err != nil:
				return err
			case *keep:
				fmt.Printf("removed user %s; their keys are kept for the next \"ecs user add %s\"\n", args[0], args[0])
			case r.KeptOnly:
				fmt.Printf("deleting the kept keys of %s\n", args[0])
			default:
				fmt.Printf("removed user %s; the servers delete their keys in the background\n", args[0])
			}
			return nil
		})
	}
	list := &cobra.Command{Use: "list", Short: "List the users (--long: with namespaces, and names removed with their keys kept)", Args: cobra.NoArgs}
	loadList := adminFlags(list)
	timeoutList := timeoutFlag(list, userTimeout, "how long the command may take")
	long := list.Flags().BoolP("long", "l", false, "print each user's namespace and state")
	list.RunE = func(*cobra.Command, []string) error {
		return withEtcd(loadList, *timeoutList, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
			users, err := opclient.ListUsers(ctx, cli, cfg.Cluster)
			if err != nil {
				return err
			}
			printUsers(os.Stdout, users, *long)
			return nil
		})
	}
	user.AddCommand(add, remove, list)
	return user
}

// printUsers prints the users' names, or with long a table of name,
// namespace and state that also lists the names removed with their keys
// kept.
func printUsers(w io.Writer, users []opclient.UserInfo, long bool) {
	if !long {
		for _, u := range users {
			if !u.Kept {
				fmt.Fprintln(w, u.Name)
			}
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNAMESPACE\tSTATE")
	for _, u := range users {
		state := "active"
		switch {
		case u.Kept:
			state = "removed, keys kept"
		case u.Namespace == u.Name:
			state = "active (created before ids: the name is the namespace)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Namespace, state)
	}
	_ = tw.Flush()
}

// newPassword asks for a password twice without echo on a terminal, or
// reads the first line of a pipe or file.
func newPassword(in *os.File, prompt io.Writer) (string, error) {
	if !term.IsTerminal(int(in.Fd())) {
		line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(prompt, "Password: ")
	a, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(prompt, "Again: ")
	b, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords differ; nothing changed")
	}
	return string(a), nil
}
