package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
)

// ServerConfig returns the configuration of a TLS listener that accepts only
// peers with a certificate signed by f.CA.
func ServerConfig(f Files) (*tls.Config, error) {
	cert, pool, err := load(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// ClientConfig returns the configuration of a connection that presents f's
// certificate and trusts only servers signed by f.CA.
func ClientConfig(f Files) (*tls.Config, error) {
	cert, pool, err := load(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: pool}, nil
}

func load(f Files) (tls.Certificate, *x509.CertPool, error) {
	if err := f.Check(); err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tlsutil: certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tlsutil: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("%w: CA file %s", ErrBadPEM, f.CA)
	}
	return cert, pool, nil
}

// ServerCredentials returns the gRPC server credentials for f: TLS with
// required client certificates, or nil (plaintext) when f names no file.
func ServerCredentials(f Files) (credentials.TransportCredentials, error) {
	if !f.Enabled() {
		return nil, nil
	}
	cfg, err := ServerConfig(f)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// DialOption returns the transport credentials for dialing with f:
// TLS when f names files, plaintext otherwise.
func DialOption(f Files) (grpc.DialOption, error) {
	if !f.Enabled() {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	cfg, err := ClientConfig(f)
	if err != nil {
		return nil, err
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg)), nil
}

// PeerRole returns the role (RoleMember, RoleClient) and name of the
// verified certificate of the gRPC peer of ctx; ok is false on a
// plaintext connection.
func PeerRole(ctx context.Context) (role, name string, ok bool) {
	p, found := peer.FromContext(ctx)
	if !found {
		return "", "", false
	}
	ti, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS {
		return "", "", false
	}
	return StateRole(ti.State)
}

// StateRole is PeerRole for a TLS connection's state.
func StateRole(cs tls.ConnectionState) (role, name string, ok bool) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", "", false
	}
	leaf := cs.VerifiedChains[0][0]
	if len(leaf.Subject.OrganizationalUnit) > 0 {
		name = leaf.Subject.OrganizationalUnit[0]
	}
	return leaf.Subject.CommonName, name, true
}

// Handshaken is gRPC server credentials for connections whose TLS
// handshake the listener already did (a listener that routes connections
// by ALPN): the handshake only reports the connection's TLS state. A
// connection that is not TLS is refused.
type Handshaken struct {
	credentials.TransportCredentials
}

// NewHandshaken returns Handshaken over cfg's credentials (used for Info).
func NewHandshaken(cfg *tls.Config) Handshaken { return Handshaken{credentials.NewTLS(cfg)} }

// ServerHandshake returns c with its TLS state.
func (h Handshaken) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, nil, fmt.Errorf("tlsutil: %T is not a TLS connection", c)
	}
	return c, credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

// Clone keeps the type (gRPC clones the credentials it is given).
func (h Handshaken) Clone() credentials.TransportCredentials {
	return Handshaken{h.TransportCredentials.Clone()}
}

// EtcdConfig returns the TLS configuration for dialing etcd at endpoints
// with f, or nil for plaintext: f names no file, or every endpoint says
// http:// explicitly.
func EtcdConfig(f Files, endpoints []string) (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	plain := len(endpoints) > 0
	for _, e := range endpoints {
		plain = plain && strings.HasPrefix(e, "http://")
	}
	if plain {
		return nil, nil
	}
	return ClientConfig(f)
}
