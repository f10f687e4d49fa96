package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/ecs/launcher"
	"github.com/spf13/cobra"
)

func newCertsCommand() *cobra.Command {
	certs := &cobra.Command{Use: "certs", Short: "Create the certificates of a secure cluster"}
	initCmd := &cobra.Command{
		Use:   "init --dir DIR [--host H]... [-n N | --server ID=HOST[,HOST...]]... [--client NAME]...",
		Short: "Create a CA and certificates for the ECS, each server and clients in DIR",
		Long: `Creates DIR/ca.crt and ca.key (keep ca.key private), and NAME.crt and NAME.key
for the ECS (ecs), every server (its id) and every client. Server and ECS
certificates name the hosts they serve on; 127.0.0.1 and localhost are
always included. A directory that already holds a CA is left alone.`,
		Args: cobra.NoArgs,
	}
	initCmd.RunE = certsRun(initCmd, []string{tlsutil.ClientName}, "created", tlsutil.InitDir)
	addCmd := &cobra.Command{
		Use:   "add --dir DIR [--host H]... [-n N | --server ID=HOST[,HOST...]]... [--client NAME]...",
		Short: "Issue more server and client certificates with the CA in DIR (for hosts that join later)",
		Args:  cobra.NoArgs,
	}
	addCmd.RunE = certsRun(addCmd, nil, "issued", tlsutil.AddToDir)
	certs.AddCommand(initCmd, addCmd)
	return certs
}

// certsRun adds the flags of `certs init` and `certs add` to cmd and
// returns its action: check the flags, then create the files with do.
func certsRun(cmd *cobra.Command, defaultClients []string, done string,
	do func(string, tlsutil.DirSpec) ([]string, error)) func(*cobra.Command, []string) error {
	f := cmd.Flags()
	dir := f.String("dir", "", "certificate directory (required)")
	hosts := f.StringSlice("host", nil, "host names or IPs of the ECS and its embedded etcd, and of -n servers (repeatable)")
	n := f.IntP("servers", "n", 0, "servers s1..sN on the --host names")
	servers := f.StringArray("server", nil, "server ID=HOST[,HOST...] (repeatable)")
	clients := f.StringSlice("client", defaultClients, "client certificate names")
	valid := f.Duration("valid-for", 365*24*time.Hour, "validity of the certificates (a new CA's is ten times longer)")
	_ = cmd.MarkFlagRequired("dir")
	return func(*cobra.Command, []string) error {
		spec, err := certSpec(*hosts, *n, *servers, *clients, *valid)
		if err != nil {
			return err
		}
		written, err := do(*dir, spec)
		if err != nil {
			return fmt.Errorf("certs %s: %w", cmd.Name(), err)
		}
		fmt.Printf("%s %d files in %s: %s\n", done, len(written), *dir, strings.Join(baseNames(written), " "))
		return nil
	}
}

// certSpec checks the flags of `certs init` and builds what it creates.
func certSpec(hosts []string, n int, servers, clients []string, valid time.Duration) (tlsutil.DirSpec, error) {
	spec := tlsutil.DirSpec{ECSHosts: launcher.HostNames(hosts...), Clients: clients, Validity: valid}
	if valid < time.Hour {
		return spec, fmt.Errorf("certs: --valid-for must be at least 1h, got %v", valid)
	}
	if n < 0 || n > 1000 {
		return spec, fmt.Errorf("certs: -n must be in 0..1000, got %d", n)
	}
	seen := map[string]bool{}
	add := func(id string, hs []string) error {
		if !validName(id) || seen[id] || id == tlsutil.ECSName || id == "ca" {
			return fmt.Errorf("certs: server id %q is empty, repeated, reserved or has characters other than letters, digits, '.', '_', '-'", id)
		}
		seen[id] = true
		spec.Servers = append(spec.Servers, tlsutil.Server{ID: id, Hosts: launcher.HostNames(hs...)})
		return nil
	}
	for i := 1; i <= n; i++ {
		if err := add(fmt.Sprintf("s%d", i), hosts); err != nil {
			return spec, err
		}
	}
	for _, s := range servers {
		id, hs, ok := strings.Cut(s, "=")
		if !ok {
			return spec, fmt.Errorf("certs: --server wants ID=HOST[,HOST...], got %q", s)
		}
		if err := add(id, strings.Split(hs, ",")); err != nil {
			return spec, err
		}
	}
	for _, c := range clients {
		if !validName(c) || seen[c] || c == tlsutil.ECSName || c == "ca" {
			return spec, fmt.Errorf("certs: client name %q is empty, taken, reserved or has characters other than letters, digits, '.', '_', '-'", c)
		}
		seen[c] = true
	}
	return spec, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		ok := r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
