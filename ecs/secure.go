package ecs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// certValidity is how long certificates created by `ecs start --secure` last.
const certValidity = 365 * 24 * time.Hour

// LocalHosts are the names every certificate of a local cluster carries,
// besides the configured host.
var LocalHosts = []string{"127.0.0.1", "localhost", "::1"}

// setupTLS prepares the ECS's certificates (creating a CA and the ECS's and
// a client's certificate for a local --secure cluster when the directory
// has none) and the credentials it dials servers with.
func (s *Server) setupTLS() error {
	s.tls = s.cfg.CertsTLS()
	if s.cfg.Secure && s.tls.CertsDir != "" {
		if err := ensureCertsDir(s.tls.CertsDir, s.cfg.Host); err != nil {
			return err
		}
	}
	files := s.tls.Files(tlsutil.ECSName)
	if err := files.Check(); err != nil {
		return fmt.Errorf("ecs: %w", err)
	}
	var err error
	if s.creds, err = tlsutil.DialOption(files); err != nil {
		return fmt.Errorf("ecs: %w", err)
	}
	return nil
}

// ensureCertsDir creates dir with `ecs certs init`'s defaults for one host
// unless it holds a CA already.
func ensureCertsDir(dir, host string) error {
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

// etcdTLSInfo is the embedded etcd's TLS for clients and its peer port:
// the ECS's certificate, clients must present a member certificate of the
// cluster CA (a user's client certificate is refused: etcd holds every
// password hash and the token key).
func etcdTLSInfo(f tlsutil.Files) transport.TLSInfo {
	return transport.TLSInfo{
		CertFile: f.Cert, KeyFile: f.Key, TrustedCAFile: f.CA,
		ClientCertAuth: true, AllowedCNs: []string{tlsutil.RoleMember},
	}
}

// scheme is the URL scheme of the embedded etcd.
func scheme(secure bool) string {
	if secure {
		return "https"
	}
	return "http"
}

// SecuritySummary describes TLS and authentication for the ready line:
// empty on a plaintext cluster.
func (s *Server) SecuritySummary() string {
	if !s.tls.Enabled() {
		return ""
	}
	out := ", TLS"
	if s.tls.CertsDir != "" {
		out += " (certificates in " + s.tls.CertsDir + ")"
	}
	if s.cfg.AuthOn() {
		out += ", authentication on"
	}
	return out
}
