package kvserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/ecs/opclient"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// nsKeys counts the keys of namespace ns on server id, every partition.
func (c *tcluster) nsKeys(t *testing.T, id, ns string) int {
	t.Helper()
	n := 0
	for _, p := range allPartitions() {
		ops, err := c.srv(id).store.NamespaceKeys(p, []byte(ns), 0)
		require.NoError(t, err)
		n += len(ops)
	}
	return n
}

// loginNew logs in as a user just added, once server id has seen them.
func (c *tcluster) loginNew(t *testing.T, id, user, pw string) string {
	t.Helper()
	var tok string
	var err error
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		tok, err = c.login(t, id, user, pw)
		return err == nil
	}, "%s cannot log in at %s", user, id)
	return tok
}

// TestRemovedUserSwept: removing carol deletes her keys from every replica
// through the chain, and nobody else's; carol added again starts empty.
func TestRemovedUserSwept(t *testing.T) {
	c := newAuthCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u, err := auth.NewUser("carol", "carol-pw", bcrypt.MinCost)
	require.NoError(t, err)
	carol, err := opclient.AddUser(ctx, c.cli, c.name, u)
	require.NoError(t, err)
	carolTok := c.loginNew(t, "s1", "carol", "carol-pw")
	alice, err := c.login(t, "s1", "alice", "alice-pw")
	require.NoError(t, err)

	const n = 40
	for i := range n {
		for _, tok := range []string{carolTok, alice} {
			resp, err := c.kvAs(t, tok, fmt.Sprintf("k%d", i), []byte(tok[:10]), false)
			require.NoError(t, err)
			require.Equal(t, kvpb.Status_SUCCESS, resp.Status)
		}
	}
	members := []string{"s1", "s2", "s3"}
	c.waitConverged(members, allPartitions(), 5*time.Second)
	for _, id := range members {
		require.Equal(t, n, c.nsKeys(t, id, carol.ID), id)
	}

	_, err = opclient.RemoveUser(ctx, c.cli, c.name, "carol", false)
	require.NoError(t, err)
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
		for _, id := range members {
			if c.nsKeys(t, id, carol.ID) > 0 {
				return false
			}
		}
		return true
	}, "carol's keys are still stored")
	c.waitConverged(members, allPartitions(), 5*time.Second)
	require.Equal(t, float64(n), promtest.ToFloat64(c.srv("s1").metrics.removedSwept), "the head swept each key once")
	aliceNS := c.userNS(t, "alice")
	for _, id := range members {
		require.Equal(t, n, c.nsKeys(t, id, aliceNS), "alice's keys on %s", id)
	}
	for i := range n {
		resp, err := c.kvAs(t, alice, fmt.Sprintf("k%d", i), nil, false)
		require.NoError(t, err)
		require.Equal(t, alice[:10], string(resp.Value))
	}

	again, err := auth.NewUser("carol", "carol-pw", bcrypt.MinCost)
	require.NoError(t, err)
	_, err = opclient.AddUser(ctx, c.cli, c.name, again)
	require.NoError(t, err)
	tok := c.loginNew(t, "s3", "carol", "carol-pw") // kvAs reads at s3: it knows the new record
	resp, err := c.kvAs(t, tok, "k0", nil, false)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_NOT_FOUND, resp.Status, "the new carol starts empty")
}

func TestRemovedSet(t *testing.T) {
	s := &Server{lg: zap.NewNop()}
	for _, tt := range []struct {
		suffix string
		ok     bool
	}{
		{"0123456789abcdef", true}, {"carol", true}, // an id; a name, for a user older than ids
		{"", false}, {"a\x00b", false}, {"../x", false}, // never the empty namespace of a cluster without users
	} {
		_, ok := s.tombstoneNS([]byte(tt.suffix))
		require.Equal(t, tt.ok, ok, "%q", tt.suffix)
	}
	var r removedSet
	require.Equal(t, []string{"b", "a"}, r.reset([]string{"b", "a"}))
	require.False(t, r.add("a"))
	require.True(t, r.add("c"))
	require.Equal(t, []string{"d"}, r.reset([]string{"a", "c", "d"}))
	r.remove("c")
	require.Equal(t, [][]byte{[]byte("a"), []byte("d")}, r.list())
	require.Equal(t, 2, r.len())
}
