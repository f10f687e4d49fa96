package opclient

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
)

func TestUsers(t *testing.T) {
	cli, _ := testutil.StartEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []string{"bob", "alice"} {
		u, err := auth.NewUser(n, "pw", bcrypt.MinCost)
		require.NoError(t, err)
		_, err = AddUser(ctx, cli, "c", u)
		require.NoError(t, err)
	}
	u, _ := auth.NewUser("bob", "other", bcrypt.MinCost)
	_, err := AddUser(ctx, cli, "c", u)
	require.ErrorIs(t, err, ErrUserExists)
	require.Equal(t, []string{"alice", "bob"}, userNames(t, cli))
	_, err = RemoveUser(ctx, cli, "c", "bob", false)
	require.NoError(t, err)
	_, err = RemoveUser(ctx, cli, "c", "bob", false)
	require.ErrorIs(t, err, ErrNoUser)
	_, err = RemoveUser(ctx, cli, "c", "../x", false)
	require.ErrorIs(t, err, auth.ErrBadUser)
	require.Equal(t, []string{"alice"}, userNames(t, cli))
}

func userNames(t *testing.T, cli *clientv3.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	users, err := ListUsers(ctx, cli, "c")
	require.NoError(t, err)
	var names []string
	for _, u := range users {
		if !u.Kept {
			names = append(names, u.Name)
		}
	}
	return names
}

// record reads the etcd value at key and its mod revision (0: none).
func record(t *testing.T, cli *clientv3.Client, key string) ([]byte, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return nil, 0
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision
}

// TestRemoveUserTombstones: removal deletes the record and writes the
// tombstone of the user's namespace in one transaction; a re-added name
// gets a new id; --keep-data keeps the id for the next add instead.
func TestRemoveUserTombstones(t *testing.T) {
	cli, _ := testutil.StartEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	add := func(name string) auth.User {
		u, err := auth.NewUser(name, "pw", bcrypt.MinCost)
		require.NoError(t, err)
		stored, err := AddUser(ctx, cli, "c", u)
		require.NoError(t, err)
		return stored
	}

	t.Run("removal writes the tombstone atomically", func(t *testing.T) {
		carol := add("carol")
		_, userRev := record(t, cli, etcdkeys.User("c", "carol"))
		r, err := RemoveUser(ctx, cli, "c", "carol", false)
		require.NoError(t, err)
		require.Equal(t, carol.ID, r.Namespace())
		val, tombRev := record(t, cli, etcdkeys.Tombstone("c", carol.ID))
		require.NotZero(t, tombRev)
		_, gone := record(t, cli, etcdkeys.User("c", "carol"))
		require.Zero(t, gone)
		// One transaction: the deletion and the tombstone share a revision.
		hist, err := cli.Get(ctx, etcdkeys.User("c", "carol"), clientv3.WithRev(tombRev-1))
		require.NoError(t, err)
		require.Len(t, hist.Kvs, 1, "the record existed just before the tombstone's revision")
		require.Equal(t, userRev, hist.Kvs[0].ModRevision)
		got, err := auth.UnmarshalRemoval(val)
		require.NoError(t, err)
		require.Equal(t, "carol", got.Name)

		again := add("carol")
		require.NotEqual(t, carol.ID, again.ID, "a re-added name gets a new id")
		_, err = RemoveUser(ctx, cli, "c", "carol", false)
		require.NoError(t, err)
	})

	t.Run("keep-data keeps the id for the next add", func(t *testing.T) {
		erin := add("erin")
		_, err := RemoveUser(ctx, cli, "c", "erin", true)
		require.NoError(t, err)
		_, rev := record(t, cli, etcdkeys.Tombstone("c", erin.ID))
		require.Zero(t, rev, "no tombstone: the keys stay")
		users, err := ListUsers(ctx, cli, "c")
		require.NoError(t, err)
		require.Contains(t, users, UserInfo{Name: "erin", Namespace: erin.ID, Kept: true})
		require.NotContains(t, userNames(t, cli), "erin")

		back := add("erin")
		require.Equal(t, erin.ID, back.ID, "the kept id comes back")
		_, rev = record(t, cli, etcdkeys.KeptUser("c", "erin"))
		require.Zero(t, rev, "and the kept record is used up")

		_, err = RemoveUser(ctx, cli, "c", "erin", true)
		require.NoError(t, err)
		r, err := RemoveUser(ctx, cli, "c", "erin", false)
		require.NoError(t, err, "removing a kept name deletes its keys")
		require.True(t, r.KeptOnly)
		_, rev = record(t, cli, etcdkeys.Tombstone("c", erin.ID))
		require.NotZero(t, rev)
		_, rev = record(t, cli, etcdkeys.KeptUser("c", "erin"))
		require.Zero(t, rev)
		_, err = RemoveUser(ctx, cli, "c", "erin", false)
		require.ErrorIs(t, err, ErrNoUser)
	})

	t.Run("a user created before ids: the name is the namespace", func(t *testing.T) {
		legacy := add("frank")
		legacy.ID = ""
		_, err := cli.Put(ctx, etcdkeys.User("c", "frank"), string(legacy.Marshal()))
		require.NoError(t, err)
		users, err := ListUsers(ctx, cli, "c")
		require.NoError(t, err)
		require.Contains(t, users, UserInfo{Name: "frank", Namespace: "frank"})
		_, err = RemoveUser(ctx, cli, "c", "frank", false)
		require.NoError(t, err)
		_, rev := record(t, cli, etcdkeys.Tombstone("c", "frank"))
		require.NotZero(t, rev)
		require.NotEmpty(t, add("frank").ID, "a re-added name gets an id")
	})

	t.Run("a tombstoned namespace is never given out again", func(t *testing.T) {
		u, err := auth.NewUser("gina", "pw", bcrypt.MinCost)
		require.NoError(t, err)
		_, err = cli.Put(ctx, etcdkeys.Tombstone("c", u.ID), string(auth.NewRemoval(u).Marshal()))
		require.NoError(t, err)
		stored, err := AddUser(ctx, cli, "c", u)
		require.NoError(t, err)
		require.NotEqual(t, u.ID, stored.ID)
	})
}
