package tlsutil

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func initDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	_, err := InitDir(dir, DirSpec{
		ECSHosts: []string{"127.0.0.1", "localhost"},
		Servers:  []Server{{ID: "s1", Hosts: []string{"127.0.0.1"}}},
		Clients:  []string{ClientName},
		Validity: time.Hour,
	})
	require.NoError(t, err)
	return dir
}

func TestInitDir(t *testing.T) {
	dir := initDir(t)
	for _, name := range []string{"ca", ECSName, "s1", ClientName} {
		f := DirFiles(dir, name)
		require.FileExists(t, f.Cert)
		fi, err := os.Stat(f.Key)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "%s must be private", f.Key)
	}
	t.Run("second init refused", func(t *testing.T) {
		_, err := InitDir(dir, DirSpec{Validity: time.Hour})
		require.ErrorIs(t, err, ErrExists)
	})
	t.Run("a leftover file refuses init before anything is written", func(t *testing.T) {
		other := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(other, "client.key"), []byte("x"), 0o600))
		_, err := InitDir(other, DirSpec{Clients: []string{ClientName}, Validity: time.Hour})
		require.ErrorIs(t, err, ErrExists)
		require.NoFileExists(t, filepath.Join(other, "ca.crt"))
	})
	t.Run("add issues with the same CA", func(t *testing.T) {
		written, err := AddToDir(dir, DirSpec{Servers: []Server{{ID: "s7", Hosts: []string{"10.0.0.7"}}}, Clients: []string{"alice"}, Validity: time.Hour})
		require.NoError(t, err)
		require.Len(t, written, 4)
		f := DirFiles(dir, "s7")
		cfg, err := ClientConfig(f)
		require.NoError(t, err)
		leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
		require.NoError(t, err)
		_, err = leaf.Verify(x509.VerifyOptions{Roots: cfg.RootCAs, DNSName: "10.0.0.7"})
		require.NoError(t, err, "signed by the directory's CA, for its host")
		_, err = AddToDir(dir, DirSpec{Clients: []string{"alice"}, Validity: time.Hour})
		require.ErrorIs(t, err, ErrExists)
		_, err = AddToDir(t.TempDir(), DirSpec{Clients: []string{"bob"}, Validity: time.Hour})
		require.ErrorContains(t, err, "ca.crt", "no CA to issue with")
	})
	t.Run("ensure issues a missing leaf once", func(t *testing.T) {
		f, err := EnsureLeaf(dir, Leaf{Name: "s2", Role: RoleMember, Hosts: []string{"127.0.0.1"}, Validity: time.Hour})
		require.NoError(t, err)
		before, err := os.ReadFile(f.Cert)
		require.NoError(t, err)
		_, err = EnsureLeaf(dir, Leaf{Name: "s2", Role: RoleMember, Validity: time.Hour})
		require.NoError(t, err)
		after, err := os.ReadFile(f.Cert)
		require.NoError(t, err)
		require.Equal(t, before, after)
	})
}

func TestFilesCheck(t *testing.T) {
	dir := initDir(t)
	require.NoError(t, Files{}.Check())
	require.NoError(t, DirFiles(dir, "s1").Check())
	require.ErrorIs(t, Files{Cert: "x"}.Check(), ErrIncomplete)
	require.ErrorContains(t, DirFiles(dir, "nobody").Check(), "nobody.crt")
	_, err := ClientConfig(Files{CA: DirFiles(dir, "s1").Key, Cert: DirFiles(dir, "s1").Cert, Key: DirFiles(dir, "s1").Key})
	require.ErrorIs(t, err, ErrBadPEM)
}

// serve runs a gRPC health server with f's credentials that records the
// caller's role.
func serve(t *testing.T, f Files, roles chan<- string) string {
	t.Helper()
	creds, err := ServerCredentials(f)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			role, name, _ := PeerRole(ctx)
			roles <- role + "/" + name
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(g, health.NewServer())
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

func probe(t *testing.T, addr string, opt grpc.DialOption) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, opt)
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestMutualTLS(t *testing.T) {
	dir := initDir(t)
	roles := make(chan string, 10)
	addr := serve(t, DirFiles(dir, "s1"), roles)

	other := initDir(t)
	foreign := DirFiles(other, ClientName)
	foreign.CA = DirFiles(dir, "s1").CA // trusts our CA, but its certificate is not ours

	noCert, err := ClientConfig(DirFiles(dir, ClientName))
	require.NoError(t, err)
	noCert.Certificates = nil

	tests := []struct {
		name     string
		opt      func() grpc.DialOption
		wantRole string
	}{
		{name: "member", opt: func() grpc.DialOption { return mustDial(t, DirFiles(dir, ECSName)) }, wantRole: RoleMember + "/" + ECSName},
		{name: "client", opt: func() grpc.DialOption { return mustDial(t, DirFiles(dir, ClientName)) }, wantRole: RoleClient + "/" + ClientName},
		{name: "plaintext", opt: func() grpc.DialOption { return mustDial(t, Files{}) }},
		{name: "no client certificate", opt: func() grpc.DialOption { return grpc.WithTransportCredentials(credentials.NewTLS(noCert)) }},
		{name: "certificate of another CA", opt: func() grpc.DialOption { return mustDial(t, foreign) }},
		{name: "server of another CA", opt: func() grpc.DialOption { return mustDial(t, DirFiles(other, ClientName)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := probe(t, addr, tt.opt())
			if tt.wantRole == "" {
				require.Error(t, err)
				require.Equal(t, codes.Unavailable, status.Code(err), "refused at the handshake: %v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantRole, <-roles)
		})
	}
}

func mustDial(t *testing.T, f Files) grpc.DialOption {
	t.Helper()
	opt, err := DialOption(f)
	require.NoError(t, err)
	return opt
}
