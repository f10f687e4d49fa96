package ecs

import (
	"context"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/ecs/opclient"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// AddUser is opclient.AddUser, kept for callers outside ecs that still
// name it here.
//
// Deprecated: use opclient.AddUser.
func AddUser(ctx context.Context, cli *clientv3.Client, cluster string, u auth.User) (auth.User, error) {
	return opclient.AddUser(ctx, cli, cluster, u)
}

// RemoveUser is opclient.RemoveUser, kept for callers outside ecs that
// still name it here.
//
// Deprecated: use opclient.RemoveUser.
func RemoveUser(ctx context.Context, cli *clientv3.Client, cluster, name string, keepData bool) (opclient.Removed, error) {
	return opclient.RemoveUser(ctx, cli, cluster, name, keepData)
}
