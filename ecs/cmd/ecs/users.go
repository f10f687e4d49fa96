package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/ecs"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

// userTimeout bounds one user command's etcd requests.
const userTimeout = 10 * time.Second

func newUserCommand() *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manage the users of a cluster with authentication"}
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user; the password is asked for twice without echo, or read from standard input's first line",
		Args:  cobra.ExactArgs(1),
	}
	loadAdd := adminFlags(add)
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
		return withEtcd(loadAdd, userTimeout, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
			if err := ecs.AddUser(ctx, cli, cfg.Cluster, u); err != nil {
				return err
			}
			fmt.Printf("added user %s\n", u.Name)
			if on, known := ecs.AuthEnabled(ctx, cli, cfg.Cluster); known && !on {
				fmt.Fprintf(os.Stderr, "note: cluster %q has authentication off; users matter only on a cluster created with --secure or --auth\n", cfg.Cluster)
			}
			return nil
		})
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user; servers refuse their tokens within moments (their keys stay)",
		Args:  cobra.ExactArgs(1),
	}
	loadRemove := adminFlags(remove)
	remove.RunE = func(_ *cobra.Command, args []string) error {
		return withEtcd(loadRemove, userTimeout, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
			if err := ecs.RemoveUser(ctx, cli, cfg.Cluster, args[0]); err != nil {
				return err
			}
			fmt.Printf("removed user %s\n", args[0])
			return nil
		})
	}
	list := &cobra.Command{Use: "list", Short: "List the users", Args: cobra.NoArgs}
	loadList := adminFlags(list)
	list.RunE = func(*cobra.Command, []string) error {
		return withEtcd(loadList, userTimeout, func(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
			names, err := ecs.ListUsers(ctx, cli, cfg.Cluster)
			for _, n := range names {
				fmt.Println(n)
			}
			return err
		})
	}
	user.AddCommand(add, remove, list)
	return user
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
