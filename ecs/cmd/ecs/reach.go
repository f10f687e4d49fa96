package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// reachTimeout bounds how long an admin command tries to reach etcd
// before it says why it cannot.
const reachTimeout = 3 * time.Second

// errUnreachable marks the one-line diagnoses of dial.
var errUnreachable = errors.New("cannot reach the cluster")

// dial connects to the cluster's etcd and makes sure, within
// reachTimeout, that it answers and holds the cluster; otherwise it says
// why in one line: the certificate is not a member's, nothing listens,
// TLS is needed, the handshake failed, or no such cluster.
func dial(cfg config.Admin) (*clientv3.Client, error) {
	files := cfg.EtcdFiles(tlsutil.ECSName)
	if err := checkMemberCert(files.Cert); err != nil {
		return nil, err
	}
	tlsCfg, err := tlsutil.EtcdConfig(files, cfg.EtcdEndpoints)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.EtcdEndpoints, DialTimeout: reachTimeout, TLS: tlsCfg, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", cfg.EtcdEndpoints, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, etcdkeys.Root(cfg.Cluster), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err == nil && resp.Count == 0 {
		err = noCluster(ctx, cli, cfg)
	} else if err != nil {
		err = diagnose(cfg.EtcdEndpoints, tlsCfg, err)
	}
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	return cli, nil
}

// checkMemberCert refuses a client certificate of the cluster's CA up
// front: etcd admits only members, and its refusal would surface as a
// timeout.
func checkMemberCert(path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err // tlsutil reports it with the flag's name
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || c.Subject.CommonName != tlsutil.RoleClient {
		return nil
	}
	return fmt.Errorf("%w: certificate %s is a client's (%s %s); admin commands need a member certificate: ecs.crt of --certs-dir, or --cert/--key of one",
		errUnreachable, path, c.Subject.CommonName, strings.Join(c.Subject.OrganizationalUnit, ","))
}

// diagnose turns a failed first request into the likely cause, probing
// the first endpoint that a TCP connection reaches.
func diagnose(endpoints []string, tlsCfg *tls.Config, cause error) error {
	var refused []string
	for _, ep := range endpoints {
		host := strings.TrimPrefix(strings.TrimPrefix(ep, "https://"), "http://")
		conn, err := net.DialTimeout("tcp", host, time.Second)
		if err != nil {
			refused = append(refused, host)
			continue
		}
		_ = conn.Close()
		if tlsCfg == nil {
			return fmt.Errorf("%w: etcd at %s does not answer in plaintext; a secure cluster needs --certs-dir DIR (or --cacert/--cert/--key)", errUnreachable, host)
		}
		c := tlsCfg.Clone()
		if h, _, err := net.SplitHostPort(host); err == nil && c.ServerName == "" {
			c.ServerName = h
		}
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", host, c)
		if err != nil {
			return fmt.Errorf("%w: TLS with etcd at %s failed: %v", errUnreachable, host, err)
		}
		_ = tc.Close()
		return fmt.Errorf("%w: etcd at %s accepted the connection but did not answer within %v: %v", errUnreachable, host, reachTimeout, cause)
	}
	return fmt.Errorf("%w: nothing listening at %s (is the cluster running? --etcd-endpoints names its etcd)", errUnreachable, strings.Join(refused, ", "))
}

// noCluster names the clusters the etcd does hold.
func noCluster(ctx context.Context, cli *clientv3.Client, cfg config.Admin) error {
	resp, err := cli.Get(ctx, "/ecskv/", clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(10000))
	var names []string
	if err == nil {
		for _, kv := range resp.Kvs {
			if name, _, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), "/ecskv/"), "/"); ok && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("%w: etcd at %s holds no ecskv cluster", errUnreachable, strings.Join(cfg.EtcdEndpoints, ","))
	}
	slices.Sort(names)
	return fmt.Errorf("%w: no cluster %q in etcd at %s (it holds %s; --cluster names one)",
		errUnreachable, cfg.Cluster, strings.Join(cfg.EtcdEndpoints, ","), strings.Join(names, ", "))
}
