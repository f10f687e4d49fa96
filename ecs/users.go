package ecs

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
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
	r, _, _, err := loadRingAndState(ctx, s.cli, s.cfg.Cluster)
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

// AddUser stores a new user; an existing name is refused.
func AddUser(ctx context.Context, cli *clientv3.Client, cluster string, u auth.User) error {
	key := etcdkeys.User(cluster, u.Name)
	tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(u.Marshal()))).Commit()
	if err != nil {
		return fmt.Errorf("ecs: add user %s: %w", u.Name, err)
	}
	if !tr.Succeeded {
		return fmt.Errorf("%w: %s (remove it first to change the password)", ErrUserExists, u.Name)
	}
	return nil
}

// RemoveUser deletes a user; servers refuse the user's tokens as soon as
// they see the deletion. The user's keys stay (a user of the same name
// added later sees them again).
func RemoveUser(ctx context.Context, cli *clientv3.Client, cluster, name string) error {
	if err := auth.CheckUser(name); err != nil {
		return err
	}
	resp, err := cli.Delete(ctx, etcdkeys.User(cluster, name))
	if err != nil {
		return fmt.Errorf("ecs: remove user %s: %w", name, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	return nil
}

// ListUsers returns the user names, sorted.
func ListUsers(ctx context.Context, cli *clientv3.Client, cluster string) ([]string, error) {
	prefix := etcdkeys.Users(cluster)
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("ecs: list users: %w", err)
	}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		names = append(names, string(kv.Key[len(prefix):]))
	}
	slices.Sort(names)
	return names, nil
}

// AuthEnabled reports whether the cluster has authentication; known is
// false when its ring cannot be read.
func AuthEnabled(ctx context.Context, cli *clientv3.Client, cluster string) (on, known bool) {
	r, _, _, err := loadRingAndState(ctx, cli, cluster)
	if err != nil || r == nil {
		return false, false
	}
	return r.Auth, true
}
