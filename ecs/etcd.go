package ecs

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ecskv/ecskv/common/tlsutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// startEmbeddedEtcd runs a single-member etcd in dataDir/etcd on host:port
// (peers on port+1) and waits until it serves. With TLS files both ports
// serve TLS and require a member certificate.
func startEmbeddedEtcd(dataDir, host string, port int, tls tlsutil.Files, lg *zap.Logger) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "ecs"
	cfg.Dir = filepath.Join(dataDir, "etcd")
	if tls.Enabled() {
		cfg.ClientTLSInfo, cfg.PeerTLSInfo = etcdTLSInfo(tls), etcdTLSInfo(tls)
	}
	client := url.URL{Scheme: scheme(tls.Enabled()), Host: net.JoinHostPort(host, strconv.Itoa(port))}
	peer := url.URL{Scheme: scheme(tls.Enabled()), Host: net.JoinHostPort(host, strconv.Itoa(port+1))}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg.Named("etcd").WithOptions(
		zap.IncreaseLevel(zap.ErrorLevel), zap.WrapCore(func(c zapcore.Core) zapcore.Core { return quietCore{c} })))
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("ecs: embedded etcd on %s: %w", client.Host, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		lg.Info("embedded etcd ready", zap.String("client-url", client.String()))
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("ecs: embedded etcd: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("ecs: embedded etcd on %s did not become ready in 30s", client.Host)
	}
}

// dialEtcd connects to etcd and checks it answers, so a wrong endpoint fails
// now with a clear message instead of hanging later.
func dialEtcd(ctx context.Context, endpoints []string, tls tlsutil.Files, lg *zap.Logger) (*clientv3.Client, error) {
	tlsCfg, err := tlsutil.EtcdConfig(tls, endpoints)
	if err != nil {
		return nil, fmt.Errorf("ecs: etcd TLS: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: endpoints, DialTimeout: 5 * time.Second, TLS: tlsCfg,
		Logger: lg.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	})
	if err != nil {
		return nil, fmt.Errorf("ecs: etcd %v: %w", endpoints, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Get(cctx, "/ecskv/"); err != nil {
		cli.Close()
		return nil, fmt.Errorf("ecs: etcd %v does not answer: %w", endpoints, err)
	}
	return cli, nil
}

// quietCore drops the embedded etcd's shutdown chatter: when it closes, each
// listener reports "use of closed network connection" at error level.
type quietCore struct{ zapcore.Core }

func (q quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == "setting up serving from embedded etcd failed." {
		return ce
	}
	return q.Core.Check(e, ce)
}

func (q quietCore) With(fields []zapcore.Field) zapcore.Core { return quietCore{q.Core.With(fields)} }
