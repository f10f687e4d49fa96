package backup

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/ecskv/ecskv/common/etcdkeys"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A namespace is a user's id, not their name: the user records say whose
// keys are whose. A backup keeps them (their password hashes too, so the
// backup directory is as secret as the cluster's etcd) and restore puts
// them back, so every user finds their keys again. Tombstones are kept
// too: a removed user's keys are backed up as stored, and the restored
// cluster sweeps them as the original was doing.

// userPrefixes are the etcd prefixes of the user records.
func userPrefixes(cluster string) []string {
	return []string{etcdkeys.Users(cluster), etcdkeys.KeptUsers(cluster), etcdkeys.Tombstones(cluster)}
}

// readUsers reads the user records at one revision.
func readUsers(ctx context.Context, cli *clientv3.Client, cluster string) ([]EtcdEntry, error) {
	var ops []clientv3.Op
	for _, p := range userPrefixes(cluster) {
		ops = append(ops, clientv3.OpGet(p, clientv3.WithPrefix()))
	}
	resp, err := cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("ecs: read users: %w", err)
	}
	root := etcdkeys.Root(cluster)
	var out []EtcdEntry
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			out = append(out, EtcdEntry{Key: strings.TrimPrefix(string(kv.Key), root), Value: kv.Value})
		}
	}
	return out, nil
}

// restoreUsers writes the backup's user records that the target lacks.
// It returns the keys it left alone because the target holds another
// value there (a user of the same name added since, with another id).
func restoreUsers(ctx context.Context, cli *clientv3.Client, cluster string, entries []EtcdEntry) (conflicts []string, err error) {
	root := etcdkeys.Root(cluster)
	for _, e := range entries {
		if !isUserKey(e.Key) {
			return nil, fmt.Errorf("%w: manifest names etcd key %q, not a user record", ErrCorrupt, e.Key)
		}
		key := root + e.Key
		tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(e.Value))).Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			return nil, fmt.Errorf("ecs: restore %s: %w", e.Key, err)
		}
		if tr.Succeeded {
			continue
		}
		if kvs := tr.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 && !bytes.Equal(kvs[0].Value, e.Value) {
			conflicts = append(conflicts, e.Key)
		}
	}
	return conflicts, nil
}

// isUserKey says whether a relative key is under one of the user prefixes.
func isUserKey(rel string) bool {
	for _, p := range userPrefixes("") {
		if rest, ok := strings.CutPrefix(rel, strings.TrimPrefix(p, etcdkeys.Root(""))); ok && rest != "" && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}
