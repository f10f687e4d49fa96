package opclient

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// txnTries bounds the read-then-compare rounds of a user command that
// races with another admin command on the same name.
const txnTries = 5

// AddUser stores a new user and returns the record stored; an existing
// name is refused. The user gets a fresh id (the namespace of their keys)
// unless the name was removed with its keys kept (RemoveUser with
// keepData): then the record takes that id back, and the keys with it.
// A tombstoned namespace is never given out again.
func AddUser(ctx context.Context, cli *clientv3.Client, cluster string, u auth.User) (auth.User, error) {
	key, keptKey := etcdkeys.User(cluster, u.Name), etcdkeys.KeptUser(cluster, u.Name)
	for range txnTries {
		kept, err := cli.Get(ctx, keptKey)
		if err != nil {
			return auth.User{}, fmt.Errorf("ecs: add user %s: %w", u.Name, err)
		}
		conds := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
		var ops []clientv3.Op
		if len(kept.Kvs) > 0 {
			r, err := auth.UnmarshalRemoval(kept.Kvs[0].Value)
			if err != nil {
				return auth.User{}, fmt.Errorf("ecs: add user %s: %w", u.Name, err)
			}
			u.ID = r.ID
			conds = append(conds, clientv3.Compare(clientv3.ModRevision(keptKey), "=", kept.Kvs[0].ModRevision))
			ops = append(ops, clientv3.OpDelete(keptKey))
		} else {
			u.ID = cmp.Or(u.ID, auth.NewID())
			conds = append(conds, clientv3.Compare(clientv3.CreateRevision(keptKey), "=", 0))
		}
		conds = append(conds, clientv3.Compare(clientv3.CreateRevision(etcdkeys.Tombstone(cluster, u.Namespace())), "=", 0))
		ops = append(ops, clientv3.OpPut(key, string(u.Marshal())))
		tr, err := cli.Txn(ctx).If(conds...).Then(ops...).Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).Commit()
		if err != nil {
			return auth.User{}, fmt.Errorf("ecs: add user %s: %w", u.Name, err)
		}
		if tr.Succeeded {
			return u, nil
		}
		if len(tr.Responses[0].GetResponseRange().Kvs) > 0 {
			return auth.User{}, fmt.Errorf("%w: %s (to change the password keeping the keys: `ecs user remove --keep-data %s`, then add)", ErrUserExists, u.Name, u.Name)
		}
		u.ID = "" // the kept record changed, or the id was tombstoned: a fresh one
	}
	return auth.User{}, fmt.Errorf("ecs: add user %s: changed concurrently; try again", u.Name)
}

// Removed says what RemoveUser did.
type Removed struct {
	auth.Removal
	// KeptOnly: the name had no user, only the keys of one removed with
	// keepData, and those are now tombstoned.
	KeptOnly bool
}

// RemoveUser deletes a user; servers refuse the user's tokens as soon as
// they see the deletion. The same transaction writes a tombstone for the
// user's namespace, and every server deletes, through the chain, the keys
// of that namespace in the partitions it heads. With keepData it writes a
// kept record instead: the keys stay, and the next AddUser of the name
// takes them back. A name with only kept keys has them tombstoned
// (unless keepData).
func RemoveUser(ctx context.Context, cli *clientv3.Client, cluster, name string, keepData bool) (Removed, error) {
	if err := auth.CheckUser(name); err != nil {
		return Removed{}, err
	}
	key, keptKey := etcdkeys.User(cluster, name), etcdkeys.KeptUser(cluster, name)
	for range txnTries {
		resp, err := cli.Txn(ctx).Then(clientv3.OpGet(key), clientv3.OpGet(keptKey)).Commit()
		if err != nil {
			return Removed{}, fmt.Errorf("ecs: remove user %s: %w", name, err)
		}
		from, kvs := key, resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 && !keepData {
			from, kvs = keptKey, resp.Responses[1].GetResponseRange().Kvs
		}
		if len(kvs) == 0 {
			return Removed{}, fmt.Errorf("%w: %s", ErrNoUser, name)
		}
		r, err := decodeRemoval(kvs[0].Value, from == key)
		if err != nil {
			return Removed{}, fmt.Errorf("ecs: remove user %s: %w", name, err)
		}
		put := clientv3.OpPut(etcdkeys.Tombstone(cluster, r.Namespace()), string(r.Marshal()))
		if keepData {
			put = clientv3.OpPut(keptKey, string(r.Marshal()))
		}
		tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(from), "=", kvs[0].ModRevision)).
			Then(clientv3.OpDelete(from), put).Commit()
		if err != nil {
			return Removed{}, fmt.Errorf("ecs: remove user %s: %w", name, err)
		}
		if tr.Succeeded {
			return Removed{Removal: r, KeptOnly: from == keptKey}, nil
		}
	}
	return Removed{}, fmt.Errorf("ecs: remove user %s: changed concurrently; try again", name)
}

// decodeRemoval reads a user record (user) or a kept record as the
// removal to record.
func decodeRemoval(b []byte, user bool) (auth.Removal, error) {
	if !user {
		return auth.UnmarshalRemoval(b)
	}
	u, err := auth.UnmarshalUser(b)
	if err != nil {
		return auth.Removal{}, err
	}
	return auth.NewRemoval(u), nil
}

// UserInfo is one line of `ecs user list`.
type UserInfo struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"` // the id; the name for a user created before ids
	// Kept: removed with --keep-data; the next user of the name gets the
	// namespace back.
	Kept bool `json:"kept,omitempty"`
}

// ListUsers returns the users, then the names removed with their keys
// kept, each sorted by name.
func ListUsers(ctx context.Context, cli *clientv3.Client, cluster string) ([]UserInfo, error) {
	users, kept := etcdkeys.Users(cluster), etcdkeys.KeptUsers(cluster)
	resp, err := cli.Txn(ctx).Then(clientv3.OpGet(users, clientv3.WithPrefix()), clientv3.OpGet(kept, clientv3.WithPrefix())).Commit()
	if err != nil {
		return nil, fmt.Errorf("ecs: list users: %w", err)
	}
	var out []UserInfo
	for i, prefix := range []string{users, kept} {
		var part []UserInfo
		for _, kv := range resp.Responses[i].GetResponseRange().Kvs {
			info := UserInfo{Name: string(kv.Key[len(prefix):]), Namespace: "?", Kept: i == 1}
			if r, err := decodeRemoval(kv.Value, i == 0); err == nil {
				info.Namespace = r.Namespace()
			}
			part = append(part, info)
		}
		slices.SortFunc(part, func(a, b UserInfo) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, part...)
	}
	return out, nil
}

// AuthEnabled reports whether the cluster has authentication; known is
// false when its ring cannot be read.
func AuthEnabled(ctx context.Context, cli *clientv3.Client, cluster string) (on, known bool) {
	r, _, _, err := ctlstate.Load(ctx, cli, cluster)
	if err != nil || r == nil {
		return false, false
	}
	return r.Auth, true
}
