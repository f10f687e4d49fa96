package ecs

import (
	"context"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// checkCluster reads what an existing cluster fixed at creation: its key
// and value limits (launched servers size their messages by them) and
// whether it has authentication, which this start must match. With
// authentication it makes sure the token key exists with this ECS's token
// lifetime.
func (s *Server) checkCluster(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, _, _, err := ctlstate.Load(ctx, s.cli, s.cfg.Cluster)
	if err != nil {
		return err
	}
	s.limits = ringmeta.Limits{MaxKeyBytes: s.cfg.MaxKeyBytes, MaxValueBytes: s.cfg.MaxValueBytes}
	if r != nil {
		s.limits = r.Limits
	}
	if r != nil && r.Auth != s.cfg.AuthOn() {
		return fmt.Errorf("%w: cluster %q was created with authentication %s and this start has it %s (--secure or --auth turn it on); use a new data dir or cluster name to change it",
			ErrAuthMismatch, s.cfg.Cluster, onOff(r.Auth), onOff(s.cfg.AuthOn()))
	}
	if !s.cfg.AuthOn() {
		return nil
	}
	if !s.tls.Enabled() {
		s.lg.Warn("authentication without TLS: passwords and tokens cross the network in the clear (use --secure)")
	}
	return EnsureAuthConfig(ctx, s.cli, s.cfg.Cluster, s.cfg.TokenTTL)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// EnsureAuthConfig creates the cluster's token key unless it exists, and
// sets the token lifetime. Keeping an existing key keeps tokens valid
// across ECS restarts.
func EnsureAuthConfig(ctx context.Context, cli *clientv3.Client, cluster string, ttl time.Duration) error {
	key := etcdkeys.Auth(cluster)
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("ecs: read auth config: %w", err)
	}
	cfg := auth.NewConfig(ttl)
	cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if len(resp.Kvs) > 0 {
		old, err := auth.UnmarshalConfig(resp.Kvs[0].Value)
		if err != nil {
			return fmt.Errorf("ecs: %w", err)
		}
		if old.TokenTTLMs == ttl.Milliseconds() {
			return nil
		}
		cfg.Key = old.Key
		cmp = clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)
	}
	tr, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, string(cfg.Marshal()))).Commit()
	if err != nil {
		return fmt.Errorf("ecs: write auth config: %w", err)
	}
	if !tr.Succeeded {
		return fmt.Errorf("ecs: auth config changed concurrently; start again")
	}
	return nil
}
