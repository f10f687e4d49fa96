package launcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
)

// The certificates of a local --secure cluster: the ECS creates the CA and
// its own and a client's certificate when the directory has none, and the
// launcher issues each launched server's.

// certValidity is how long certificates created by `ecs start --secure` last.
const certValidity = 365 * 24 * time.Hour

// LocalHosts are the names every certificate of a local cluster carries,
// besides the configured host.
var LocalHosts = []string{"127.0.0.1", "localhost", "::1"}

// EnsureCertsDir creates dir with `ecs certs init`'s defaults for one host
// unless it holds a CA already.
func EnsureCertsDir(dir, host string) error {
	if _, err := os.Stat(tlsutil.DirFiles(dir, tlsutil.ECSName).CA); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ecs: certificates: %w", err)
	}
	_, err := tlsutil.InitDir(dir, tlsutil.DirSpec{
		ECSHosts: HostNames(host), Clients: []string{tlsutil.ClientName}, Validity: certValidity,
	})
	if err != nil {
		return fmt.Errorf("ecs: create certificates: %w", err)
	}
	return nil
}

// HostNames returns host plus the local names, without duplicates.
func HostNames(hosts ...string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, h := range append(hosts, LocalHosts...) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// serverTLSArgs returns the TLS flags of launched server id, issuing its
// certificate first when the certificate directory has the CA's key.
func serverTLSArgs(cfg config.ECS, t config.TLS, id string) ([]string, error) {
	if !t.Enabled() {
		return nil, nil
	}
	var args []string
	if t.CertsDir != "" {
		caKey := filepath.Join(t.CertsDir, "ca.key")
		if _, err := os.Stat(caKey); err == nil {
			leaf := tlsutil.Leaf{Name: id, Role: tlsutil.RoleMember, Hosts: HostNames(cfg.Host), Validity: certValidity}
			if _, err := tlsutil.EnsureLeaf(t.CertsDir, leaf); err != nil {
				return nil, fmt.Errorf("ecs: certificate for %s: %w", id, err)
			}
		}
		args = append(args, "--certs-dir", t.CertsDir)
	}
	for _, f := range []struct{ flag, v string }{
		{"--cacert", t.CACert}, {"--cert", t.Cert}, {"--key", t.Key},
		{"--etcd-cacert", t.EtcdCACert}, {"--etcd-cert", t.EtcdCert}, {"--etcd-key", t.EtcdKey},
	} {
		if f.v != "" {
			args = append(args, f.flag, f.v)
		}
	}
	return args, nil
}
