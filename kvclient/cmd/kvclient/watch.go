package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/ecskv/ecskv/config/load"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/spf13/cobra"
)

// watcher is what watch needs of a client (a *kvclient.Client).
type watcher interface {
	Watch(ctx context.Context, key string, opts ...kvclient.WatchOption) <-chan kvclient.WatchResponse
	Close() error
}

// watchCommand streams the committed writes of a key, or of the keys under
// a prefix, one line each, until interrupted.
func (a *app) watchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "watch [--prefix] [--from-version N] KEY",
		Short:                 "print every committed write of KEY (or of the keys starting with KEY, --prefix) as it happens, until interrupted",
		Args:                  cobra.ExactArgs(1),
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	prefix := f.Bool("prefix", false, "watch every key starting with KEY (\"\" for all your keys)")
	from := f.Uint64("from-version", 0, "start at KEY's writes of this version and later (0: from now); not with --prefix")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		w, err := a.watcher(ctx, cmd)
		if err != nil {
			return err
		}
		defer w.Close()
		var opts []kvclient.WatchOption
		if *prefix {
			opts = append(opts, kvclient.WatchPrefix())
		}
		if *from != 0 {
			opts = append(opts, kvclient.WatchFromVersion(*from))
		}
		return printEvents(a.stdout, a.stderr, w.Watch(ctx, args[0], opts...))
	}
	return cmd
}

// watcher connects a client for watch.
func (a *app) watcher(ctx context.Context, cmd *cobra.Command) (watcher, error) {
	cfg, err := load.Client(cmd.Flags())
	if err != nil {
		return nil, err
	}
	if cfg.User != "" && cfg.Password == "" && cfg.PasswordFile == "" {
		ask := a.terminalPassword()
		if ask == nil {
			return nil, fmt.Errorf("--user %s needs --password-file, ECSKV_PASSWORD, or a terminal to ask at", cfg.User)
		}
		if cfg.Password, err = ask(cfg.User); err != nil {
			return nil, err
		}
	}
	if a.dial != nil {
		c, err := a.dial(ctx, cfg)
		if err != nil {
			return nil, err
		}
		w, ok := c.(watcher)
		if !ok {
			_ = c.Close()
			return nil, fmt.Errorf("this client cannot watch")
		}
		return w, nil
	}
	lg, _, err := newLogger(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	c, err := kvclient.New(ctx, cfg, kvclient.WithLogger(lg))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// printEvents prints each event as "put KEY VALUE (version N)", "delete
// KEY (version N)" or "expire KEY (version N)"; "watching" on stderr once
// the watch is established. It returns the error that ended the watch, nil
// when an interrupt did.
func printEvents(stdout, stderr io.Writer, ch <-chan kvclient.WatchResponse) error {
	for r := range ch {
		switch {
		case r.Err != nil:
			return r.Err
		case r.Created:
			fmt.Fprintln(stderr, "watching (interrupt to stop)")
		}
		for _, e := range r.Events {
			if e.Kind == kvclient.EventPut {
				fmt.Fprintf(stdout, "put %s %s (version %d)\n", e.Key, e.Value, e.Version)
				continue
			}
			fmt.Fprintf(stdout, "%s %s (version %d)\n", e.Kind, e.Key, e.Version)
		}
	}
	return nil // ctx ended: an interrupt is a clean end
}
