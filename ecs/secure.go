package ecs

import (
	"fmt"

	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/ecs/launcher"
	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// setupTLS prepares the ECS's certificates (creating a CA and the ECS's and
// a client's certificate for a local --secure cluster when the directory
// has none) and the credentials it dials servers with.
func (s *Server) setupTLS() error {
	s.tls = s.cfg.CertsTLS()
	if s.cfg.Secure && s.tls.CertsDir != "" {
		if err := launcher.EnsureCertsDir(s.tls.CertsDir, s.cfg.Host); err != nil {
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
