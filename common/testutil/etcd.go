package testutil

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/tlsutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// etcdReadyTimeout bounds how long a test waits for its etcd to serve.
const etcdReadyTimeout = 30 * time.Second

// Etcd is a single-member embedded etcd run for tests.
type Etcd struct {
	// Endpoints are the client endpoints, host:port.
	Endpoints []string
	// TLS are the files a client dials with; zero for plaintext.
	TLS tlsutil.Files

	e       *embed.Etcd
	tempDir string // removed by Close; "" when the caller owns the data dir
}

// EtcdOption adjusts how RunEtcd and StartEtcd start etcd.
type EtcdOption func(*etcdOptions)

type etcdOptions struct {
	clientPort, peerPort int // 0: a FreePort
	tls                  tlsutil.Files
}

// WithEtcdPorts serves clients on clientPort and peers on peerPort, for a
// harness that restarts etcd on the same address.
func WithEtcdPorts(clientPort, peerPort int) EtcdOption {
	return func(o *etcdOptions) { o.clientPort, o.peerPort = clientPort, peerPort }
}

// WithEtcdTLS serves clients over TLS with f's certificate and requires
// client certificates signed by f's CA; StartEtcd's client dials with f.
func WithEtcdTLS(f tlsutil.Files) EtcdOption {
	return func(o *etcdOptions) { o.tls = f }
}

// StartEtcd runs etcd in a t.TempDir and returns a client of it and its
// endpoints; t.Cleanup closes both.
func StartEtcd(t testing.TB, opts ...EtcdOption) (*clientv3.Client, []string) {
	t.Helper()
	e, err := RunEtcd(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli, e.Endpoints
}

// RunEtcd runs etcd with its data in dir ("" for a temporary directory that
// Close removes) and waits until it serves. It is for code with no
// *testing.T: TestMain, or a test binary re-executed as etcd.
func RunEtcd(dir string, opts ...EtcdOption) (_ *Etcd, err error) {
	var o etcdOptions
	for _, opt := range opts {
		opt(&o)
	}
	ed := &Etcd{TLS: o.tls}
	defer func() {
		if err != nil {
			ed.Close()
		}
	}()
	if dir == "" {
		if dir, err = os.MkdirTemp("", "testutil-etcd-"); err != nil {
			return nil, fmt.Errorf("testutil: etcd dir: %w", err)
		}
		ed.tempDir = dir
	}
	cfg, err := etcdConfig(dir, o)
	if err != nil {
		return nil, err
	}
	if ed.e, err = embed.StartEtcd(cfg); err != nil {
		return nil, fmt.Errorf("testutil: start etcd: %w", err)
	}
	select {
	case <-ed.e.Server.ReadyNotify():
	case err := <-ed.e.Err():
		return nil, fmt.Errorf("testutil: etcd: %w", err)
	case <-time.After(etcdReadyTimeout):
		return nil, fmt.Errorf("testutil: etcd not ready in %v", etcdReadyTimeout)
	}
	ed.Endpoints = []string{cfg.ListenClientUrls[0].Host}
	return ed, nil
}

func etcdConfig(dir string, o etcdOptions) (*embed.Config, error) {
	if o.clientPort == 0 {
		p, err := freePortRange(2)
		if err != nil {
			return nil, err
		}
		o.clientPort, o.peerPort = p, p+1
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	scheme := "http"
	if o.tls.Enabled() {
		scheme = "https"
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = o.tls.Cert, o.tls.Key
		cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = o.tls.CA, true
	}
	cu := url.URL{Scheme: scheme, Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.clientPort))}
	pu := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.peerPort))}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Its shutdown logs errors about closed listeners: keep them out of test output.
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// A killed process loses nothing the kernel holds; only a power cut would.
	cfg.UnsafeNoFsync = true
	return cfg, nil
}

// Client dials the etcd; the caller closes the client.
func (e *Etcd) Client() (*clientv3.Client, error) {
	tc, err := tlsutil.EtcdConfig(e.TLS, e.Endpoints)
	if err != nil {
		return nil, fmt.Errorf("testutil: etcd client TLS: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: e.Endpoints, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("testutil: etcd client: %w", err)
	}
	return cli, nil
}

// Err reports a fatal error of the running etcd.
func (e *Etcd) Err() <-chan error { return e.e.Err() }

// Close stops etcd and removes its data when RunEtcd created the directory.
func (e *Etcd) Close() {
	if e.e != nil {
		e.e.Close()
	}
	if e.tempDir != "" {
		_ = os.RemoveAll(e.tempDir)
	}
}
